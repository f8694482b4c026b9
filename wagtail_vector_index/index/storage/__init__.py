"""Where vector indexes keep their chunks and vectors.

- this package: the types that cross the storage boundary (:class:`ChunkRow`,
  :class:`Hit`), the protocol a storage implements (:class:`VectorStorage`)
  and :func:`get_storage`;
- :mod:`.base`: the bookkeeping both storages share (a table of chunks with
  builds side by side, ``IndexState``, checking vectors);
- :mod:`.database`: the default storage, the application database searched
  with NumPy;
- :mod:`.pgvector`: PostgreSQL with pgvector (its app, model and migrations
  are ``wagtail_vector_index.contrib.pgvector``: that app's dotted path is
  what sites have in ``INSTALLED_APPS``, so it stays where it is);
- :mod:`.qdrant`: a Qdrant server, or qdrant-client's local mode (the extra
  ``wagtail-vector-index[qdrant]``); ``IndexState`` stays in the database.

Vectors cross the boundary as float32 NumPy arrays (one vector, or one
``(n, dimensions)`` matrix); each storage encodes them its own way (float32
bytes in a ``BinaryField``, pgvector's binary form) and never as text or
Python float lists. Vectors a storage hands back for reuse
(:meth:`VectorStorage.vectors_by_hash`) are in the storage's own form and go
back to the same storage unchanged.

``STORAGE`` paths in settings keep working: ``...index.storage.DatabaseStorage``
(this package) and ``...index.pgvector.PgvectorStorage`` (the module of that
name re-exports it) as well as ``...index.storage.pgvector.PgvectorStorage``.
Nothing here imports NumPy until a storage is used.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol

# The storage modules import the types from .types, not from this package:
# this package loads them lazily, and the imports must not go round in a
# circle.
from wagtail_vector_index.index.storage.types import ChunkRow, Hit, StorageCheck, Where

if TYPE_CHECKING:
    from wagtail_vector_index.index.storage.base import StoredBuild
    from wagtail_vector_index.models import IndexState


class VectorStorage(Protocol):
    """What a vector index asks of its storage (one instance per index)."""

    index_name: str

    def state(self) -> IndexState | None:
        """The index's state (model, dimensions, active build), if built."""

    def inspect(self, state: IndexState | None) -> StoredBuild:
        """The active build's keys counted, its reusable content hashes and
        how many of its vectors are invalid (without keeping vectors)."""

    def vectors_by_hash(
        self, state: IndexState | None, hashes: Iterable[str], *, builds: Any = ()
    ) -> dict[str, Any]:
        """Valid stored vectors for ``hashes`` (active build, plus ``builds``),
        in the storage's own form, for :meth:`write_build`."""

    def next_build(self, *, lease: Any = None) -> int:
        """A fresh build number (unfinished builds are cleared)."""

    def write_build(
        self, build: int, rows: Iterable[ChunkRow], *, dimensions: int | None = None
    ) -> None:
        """Write checked rows into ``build`` (not answering yet)."""

    def activate(
        self,
        build: int,
        *,
        model_id: str,
        dimensions: int,
        object_count: int,
        lease: Any = None,
        chunking: str = "",
    ) -> IndexState:
        """Make ``build`` the answering one, atomically (``chunking``: the
        index's ``chunking_signature()``, kept in the state)."""

    def touch(self, state: IndexState) -> None:
        """Record that an update found nothing to change.

        A storage may also define ``maintain(state)``, called after every
        update that wrote no new build (in place or unchanged) for upkeep
        of its own (pgvector: the HNSW indexes of sites added since)."""

    def replace_object(
        self,
        state: IndexState,
        content_type_id: int,
        object_id: str,
        rows: Sequence[ChunkRow],
        *,
        dimensions: int | None = None,
        lease: Any = None,
    ) -> None:
        """Swap one object's chunks in the active build."""

    def search(
        self,
        state: IndexState,
        vector: Any,
        limit: int,
        *,
        keys: Collection[tuple[int, str]] | None = None,
    ) -> list[Hit]:
        """The ``limit`` chunks most similar to ``vector``, best first; with
        ``keys``, only chunks of those ``(content type id, object id)``
        (the best ``limit`` among them, not the best overall filtered).

        A storage that filters inside its engine sets ``filters_in_engine =
        True`` and also takes ``where=`` (a :class:`Where`): the best
        ``limit`` among the chunks it allows, found without the index's keys
        in Python."""

    def object_vectors(
        self, state: IndexState, content_type_id: int, object_id: str
    ) -> list[Any]:
        """One object's valid vectors (float32 arrays), in order."""

    def apply_changes(
        self,
        state: IndexState,
        changes: Mapping[tuple[int, str], Sequence[ChunkRow]],
        *,
        dimensions: int | None = None,
        lease: Any = None,
    ) -> IndexState:
        """Swap the chunks of several objects in the active build at once:
        each ``(content type id, object id)`` of ``changes`` gets exactly its
        rows (none: the object is removed). All or nothing: a search sees
        every object of ``changes`` as it was or every one as it is now.
        Returns the state with its counts and revision moved on."""

    def first_texts(
        self, state: IndexState | None, keys: Iterable[tuple[int, str]]
    ) -> dict[tuple[int, str], str]:
        """The text of each object's first chunk (position 0) in the active
        build, by ``(content type id, object id)``; objects without chunks
        are left out."""

    def forget(self) -> None:
        """Drop anything this process keeps in memory for the index."""


#: Names defined in the storage modules, loaded on first use (NumPy stays
#: out of imports that only need the types above).
_LAZY = {
    "DatabaseStorage": "database",
    "normalise": "database",
    "to_bytes": "database",
    "from_bytes": "database",
    "ChunkTableStorage": "base",
    "InvalidVectorError": "base",
    "StoredBuild": "base",
}


__all__ = [
    "ChunkRow",
    "Hit",
    "StorageCheck",
    "VectorStorage",
    "Where",
    "check_storage",
    "get_storage",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def get_storage(index_name: str) -> VectorStorage:
    """The storage configured in ``WAGTAIL_VECTOR_INDEX["STORAGE"]`` for one
    index (the database with NumPy by default).

    ``STORAGE`` is a dotted path, or ``{"CLASS": "<dotted path>", "CONFIG":
    {...}}``; in that form the class is made with ``config=`` the ``CONFIG``
    dict.
    """
    from django.utils.module_loading import import_string

    from wagtail_vector_index import conf

    path, config = conf.get_storage_setting()
    if path is None:
        from wagtail_vector_index.index.storage.database import DatabaseStorage

        cls: Any = DatabaseStorage
    else:
        cls = import_string(path)
    if config is None:
        return cls(index_name)
    return cls(index_name, config=config)


def check_storage(index_name: str = "") -> StorageCheck:
    """Whether the configured storage answers: its own ``check_connection()``
    where it has one (Qdrant), otherwise one query of the table every
    storage keeps its state in (the application database)."""
    import time

    storage = get_storage(index_name)
    check = getattr(storage, "check_connection", None)
    if callable(check):
        return check()
    started = time.perf_counter()
    description = type(storage).__name__
    try:
        storage.state()
    except Exception as error:  # Reported, not raised: the database's reason.
        return StorageCheck(ok=False, description=description, error=str(error))
    return StorageCheck(
        ok=True,
        description=description,
        milliseconds=(time.perf_counter() - started) * 1000,
    )
