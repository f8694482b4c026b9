"""Moving an index to another storage without embedding anything again.

After ``WAGTAIL_VECTOR_INDEX["STORAGE"]`` changes, the index's next update
writes a complete build into the new storage. The vectors it needs are
where the index was kept before: the table storages (the default storage's
``EmbeddingChunk`` rows, pgvector's ``PgvectorChunk`` rows) keep the index's
answering build until something deletes it, and ``IndexState``, shared by
the storages, still names that build, its model and its dimensions.
:class:`VectorSources` puts those rows behind the embedding cache's
interface (``cached_hashes``, ``lookup``, ``store``), so the update takes a
vector from the embedding cache first, then from a former storage, and calls
the provider only for the rest.

Only vectors of the model and dimensions the state records are taken (the
update reuses nothing from a state of another model), and only valid ones.
A Qdrant collection is not read once ``STORAGE`` no longer names it (its
``CONFIG`` is gone): keep the embedding cache on (the default) when moving
away from Qdrant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from django.core.exceptions import ImproperlyConfigured

from wagtail_vector_index.redaction import get_logger

logger = get_logger(__name__)

#: Hashes asked for in one query.
BATCH = 500


def former_storages(index_name: str, current: Any, state: Any) -> list[Any]:
    """The table storages other than ``current``'s kind holding rows of the
    build ``state`` names, for ``index_name``."""
    if state is None:
        return []
    from wagtail_vector_index.index.storage.database import DatabaseStorage
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    found = []
    for kind in (DatabaseStorage, PgvectorStorage):
        if isinstance(current, kind):
            continue
        try:
            storage = kind(index_name)
        except ImproperlyConfigured:
            continue  # Not usable on this site (no pgvector app, not PostgreSQL).
        if storage.chunks(state.active_build).exists():
            found.append(storage)
    return found


class VectorSources:
    """The embedding cache (``cache``, or ``None``) and then the storages
    the index was kept in before, as one cache for an update."""

    def __init__(self, cache: Any, former: list[Any], state: Any) -> None:
        self.cache = cache
        self.former = former
        self.state = state

    def cached_hashes(self, hashes: Iterable[str]) -> set[str]:
        wanted = list(hashes)
        found = self.cache.cached_hashes(wanted) if self.cache is not None else set()
        rest = [digest for digest in wanted if digest not in found]
        for storage in self.former:
            if not rest:
                break
            chunks = storage.chunks(self.state.active_build)
            for start in range(0, len(rest), BATCH):
                found.update(
                    chunks.filter(content_hash__in=rest[start : start + BATCH])
                    .values_list("content_hash", flat=True)
                    .distinct()
                )
            rest = [digest for digest in rest if digest not in found]
        return found

    def lookup(self, hashes: Iterable[str]) -> dict[str, Any]:
        wanted = list(hashes)
        found: dict[str, Any] = (
            self.cache.lookup(wanted) if self.cache is not None else {}
        )
        rest = [digest for digest in wanted if digest not in found]
        for storage in self.former:
            if not rest:
                break
            for start in range(0, len(rest), BATCH):
                vectors = storage.vectors_by_hash(
                    self.state, rest[start : start + BATCH]
                )
                for digest, data in vectors.items():
                    found[digest] = np.frombuffer(data, dtype=np.float32)
            rest = [digest for digest in rest if digest not in found]
        return found

    def store(self, vectors: Mapping[str, Any]) -> None:
        if self.cache is not None:
            self.cache.store(vectors)


def sources(
    index_name: str, current: Any, state: Any, cache: Any, *, moved: bool
) -> Any:
    """What an update of ``index_name`` looks in before calling the provider:
    ``cache`` alone, or, when the index ``moved`` (``current`` holds nothing
    of the build ``state`` names), with the former storages holding it."""
    former = former_storages(index_name, current, state) if moved else []
    if not former:
        return cache
    logger.info(
        'Vector index "%s": vectors are taken from %s, where the index was kept '
        "before, instead of being embedded again.",
        index_name,
        ", ".join(type(storage).__name__ for storage in former),
    )
    return VectorSources(cache, former, state)
