"""What both storages do alike with their table of chunks and ``IndexState``.

``DatabaseStorage`` (NumPy) and ``PgvectorStorage`` differ in how vectors are
stored and searched; the bookkeeping of builds, states and objects is the same
and lives here. Nothing here imports NumPy or pgvector.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import Max

from wagtail_vector_index.models import IndexState, new_revision


class ChunkTableStorage:
    """A storage keeping one row per chunk in ``model``, builds side by side.

    Subclasses set ``model`` (the chunk model) and ``using`` (its database
    alias; ``None`` for the default) and write rows in ``_bulk``.
    """

    model: Any
    using: str | None = None

    def __init__(self, index_name: str) -> None:
        self.index_name = index_name

    def _bulk(self, build: int, rows: Iterable[Any]) -> None:
        raise NotImplementedError

    def _clear_unfinished(self, active: int) -> None:
        """Called by ``next_build`` after the rows of builds newer than
        ``active`` (interrupted runs) are deleted."""

    # -- state -------------------------------------------------------------

    def state(self) -> IndexState | None:
        return IndexState.objects.filter(index_name=self.index_name).first()

    def chunks(self, build: int) -> Any:
        return self.model.objects.filter(index_name=self.index_name, build=build)

    def keys(self, state: IndexState | None) -> set[tuple[int, str, int, str]]:
        if state is None:
            return set()
        return set(
            self.chunks(state.active_build).values_list(
                "content_type_id", "object_id", "position", "content_hash"
            )
        )

    # -- writing -----------------------------------------------------------

    def next_build(self) -> int:
        """A build number no rows use yet (interrupted builds are cleared)."""
        state = self.state()
        active = state.active_build if state else 0
        # Rows of a build that never became active: an interrupted run.
        self.model.objects.filter(index_name=self.index_name, build__gt=active).delete()
        self._clear_unfinished(active)
        highest = self.model.objects.filter(index_name=self.index_name).aggregate(
            highest=Max("build")
        )["highest"]
        return max(active, highest or 0) + 1

    def write_build(self, build: int, rows: Iterable[Any]) -> None:
        self._bulk(build, rows)

    def _switch(
        self, build: int, *, model_id: str, dimensions: int, object_count: int
    ) -> IndexState:
        """Make ``build`` the answering one and drop the others' rows, in one
        transaction."""
        with transaction.atomic(using=self.using):
            state, _ = IndexState.objects.select_for_update().get_or_create(
                index_name=self.index_name,
                defaults={"model_id": model_id, "dimensions": dimensions},
            )
            state.model_id = model_id
            state.dimensions = dimensions
            state.active_build = build
            state.revision = new_revision()
            state.chunk_count = self.chunks(build).count()
            state.object_count = object_count
            state.save()
            self.model.objects.filter(index_name=self.index_name).exclude(
                build=build
            ).delete()
        return state

    def touch(self, state: IndexState) -> None:
        state.save(update_fields=["updated_at"])

    def replace_object(
        self,
        state: IndexState,
        content_type_id: int,
        object_id: str,
        rows: Sequence[Any],
    ) -> None:
        """Swap one object's chunks in the active build."""
        with transaction.atomic(using=self.using):
            self.chunks(state.active_build).filter(
                content_type_id=content_type_id, object_id=object_id
            ).delete()
            self._bulk(state.active_build, rows)
            state.refresh_from_db()
            state.revision = new_revision()
            state.chunk_count = self.chunks(state.active_build).count()
            state.object_count = (
                self.chunks(state.active_build)
                .values("content_type_id", "object_id")
                .distinct()
                .count()
            )
            state.save(
                update_fields=["revision", "chunk_count", "object_count", "updated_at"]
            )
