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
