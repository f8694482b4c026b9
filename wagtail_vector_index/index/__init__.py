"""Vector indexes over models and pages.

Import from here: ``from wagtail_vector_index.index import VectorIndexedMixin,
EmbeddingField, VectorIndex, register_index``. Names load on first use, so a
models module importing the mixin does not import NumPy at start-up.
"""

from importlib import import_module
from typing import Any

_NAMES = {
    "AIBackendsMixin": "mixins",
    "VectorIndexedMixin": "mixins",
    "EmbeddingField": "fields",
    "IndexLeaseLostError": "lease",
    "IndexNeedsRebuildError": "base",
    "IndexUpdateInProgressError": "lease",
    "InvalidVectorError": "storage.base",
    "ModelVectorIndex": "base",
    "QueryResponse": "base",
    "QueryStreamingResponse": "base",
    "SearchResult": "base",
    "UpdateEstimate": "base",
    "UpdateReport": "base",
    "VectorIndex": "base",
    "get_index": "registry",
    "get_indexes": "registry",
    "register_index": "registry",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_NAMES[name]}"), name)
