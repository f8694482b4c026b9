"""The types that cross the storage boundary (importable from
:mod:`wagtail_vector_index.index.storage`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ChunkRow:
    """A chunk ready to store: its place, text, hash and vector (a float32
    array, or a vector this storage handed out for reuse)."""

    content_type_id: int
    object_id: str
    position: int
    text: str
    content_hash: str
    vector: Any


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
