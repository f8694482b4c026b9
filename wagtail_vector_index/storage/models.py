"""0.10.0's import path of the model mixin and fields (deprecated).

``from wagtail_vector_index.storage.models import VectorIndexedMixin,
EmbeddingField`` keeps working for one release, with a ``DeprecationWarning``:
import them from :mod:`wagtail_vector_index.index`. 0.10.0's index building
blocks (``EmbeddableFieldsVectorIndexMixin``, ``DefaultStorageVectorIndex``,
document converters, ...) have no equivalent with the same meaning: importing
them fails with a message naming what replaces them.
"""

import warnings
from typing import Any

_MOVED = ("VectorIndexedMixin", "EmbeddingField")

_CUSTOM_INDEX = (
    "subclass wagtail_vector_index.index.VectorIndex (get_querysets(), "
    "get_embedding_fields()) and register it with @register_index, or set "
    "vector_index_options on a VectorIndexedMixin model"
)
_REMOVED = {
    "EmbeddableFieldsMixin": "use VectorIndexedMixin from wagtail_vector_index.index",
    "GeneratedIndexMixin": "use VectorIndexedMixin from wagtail_vector_index.index",
    "EmbeddableFieldsVectorIndexMixin": _CUSTOM_INDEX,
    "PageEmbeddableFieldsVectorIndexMixin": _CUSTOM_INDEX,
    "DefaultStorageVectorIndex": _CUSTOM_INDEX,
    "build_vector_index_base_for_storage_provider": _CUSTOM_INDEX,
    "EmbeddableFieldsDocumentConverter": "override get_embedding_fields() or "
    "EmbeddingField.get_text() on a wagtail_vector_index.index.VectorIndex",
    "Embedding": "vectors are stored by the storage that "
    'WAGTAIL_VECTOR_INDEX["STORAGE"] names; 0.10.0\'s embeddings are not reused',
    "register_indexed_models": "models using VectorIndexedMixin are found "
    "without registration",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            f"Importing {name} from wagtail_vector_index.storage.models is "
            f"deprecated: use `from wagtail_vector_index.index import {name}`.",
            DeprecationWarning,
            stacklevel=2,
        )
        from wagtail_vector_index import index

        return getattr(index, name)
    if name in _REMOVED:
        raise ImportError(
            f"wagtail_vector_index.storage.models.{name} was removed after "
            f"wagtail-vector-index 0.10.0: {_REMOVED[name]} (see "
            "docs/upgrading.md)."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
