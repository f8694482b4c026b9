"""The types that cross the storage boundary (importable from
:mod:`wagtail_vector_index.index.storage`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChunkRow:
    """A chunk ready to store: its place, text, hash and vector (a float32
    array, or a vector this storage handed out for reuse), and what scoped
    searches filter on (see :class:`Where`): the object's tree path (pages;
    ``""`` for other objects) and its locale's id (translatable objects)."""

    content_type_id: int
    object_id: str
    position: int
    text: str
    content_hash: str
    vector: Any
    path: str = ""
    locale_id: int | None = None


@dataclass(frozen=True)
class Where:
    """What a scoped search may return, for a storage that filters inside
    its engine (``filters_in_engine = True``) on the attributes stored with
    each chunk (:class:`ChunkRow`'s ``path`` and ``locale_id``).

    Each condition holds for a chunk as follows; ``None`` or empty: no
    condition. The index checks the objects found again, so a storage may
    return more than this allows, never less.
    """

    #: Under one of these tree paths (a site's root page's, say), or not a
    #: page at all (path ``""``).
    paths: tuple[str, ...] | None = None
    #: Not under any of these tree paths (pages behind view restrictions).
    excluded_paths: tuple[str, ...] = ()
    #: Of this locale, or of no locale (objects that are not translatable).
    locale_id: int | None = None
    #: Only these objects, ``(content type id, object id)``: a ``filter=``
    #: given as a queryset or ``Q``, turned into the objects it allows.
    keys: frozenset[tuple[int, str]] | None = None

    def allows(self, path: str, locale_id: int | None) -> bool:
        """Whether a chunk of ``path`` and ``locale_id`` passes the path and
        locale conditions (not ``keys``), as every storage decides it."""
        if self.paths is not None and path and not path.startswith(self.paths):
            return False
        if self.excluded_paths and path and path.startswith(self.excluded_paths):
            return False
        return (
            self.locale_id is None or locale_id is None or locale_id == self.locale_id
        )


@dataclass(frozen=True)
class Hit:
    """A stored chunk matching a search, best first."""

    content_type_id: int
    object_id: str
    position: int
    text: str
    score: float


@dataclass(frozen=True)
class StorageCheck:
    """Whether a storage answers (``manage.py check_vector_storage``, the
    admin's index report)."""

    ok: bool
    #: The storage in a few words (its kind and where it is, no credentials).
    description: str
    #: How long the check took, when it succeeded.
    milliseconds: float | None = None
    #: Why it failed, in words safe to show.
    error: str = ""
