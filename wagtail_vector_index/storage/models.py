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

from django.utils.translation import gettext_noop

from wagtail_vector_index.storage import _UPGRADE_GUIDE, _translate

_MOVED = ("VectorIndexedMixin", "EmbeddingField")

_CUSTOM_INDEX = gettext_noop(
    # Translators: %(name)s is a dotted Python path, %(guide)s a file.
    "%(name)s was removed after wagtail-vector-index 0.10.0: subclass "
    "wagtail_vector_index.index.VectorIndex (get_querysets(), "
    "get_embedding_fields()) and register it with @register_index, or set "
    "vector_index_options on a VectorIndexedMixin model (see %(guide)s)."
)
_USE_MIXIN = gettext_noop(
    # Translators: %(name)s is a dotted Python path, %(guide)s a file.
    "%(name)s was removed after wagtail-vector-index 0.10.0: use "
    "VectorIndexedMixin from wagtail_vector_index.index (see %(guide)s)."
)
_REMOVED = {
    "EmbeddableFieldsMixin": _USE_MIXIN,
    "GeneratedIndexMixin": _USE_MIXIN,
    "EmbeddableFieldsVectorIndexMixin": _CUSTOM_INDEX,
    "PageEmbeddableFieldsVectorIndexMixin": _CUSTOM_INDEX,
    "DefaultStorageVectorIndex": _CUSTOM_INDEX,
    "build_vector_index_base_for_storage_provider": _CUSTOM_INDEX,
    "EmbeddableFieldsDocumentConverter": gettext_noop(
        # Translators: %(name)s is a dotted Python path, %(guide)s a file.
        "%(name)s was removed after wagtail-vector-index 0.10.0: override "
        "get_embedding_fields() or EmbeddingField.get_text() on a "
        "wagtail_vector_index.index.VectorIndex (see %(guide)s)."
    ),
    "Embedding": gettext_noop(
        # Translators: %(name)s is a dotted Python path, %(guide)s a file.
        "%(name)s was removed after wagtail-vector-index 0.10.0: vectors are "
        'stored by the storage that WAGTAIL_VECTOR_INDEX["STORAGE"] names; '
        "0.10.0's embeddings are not reused (see %(guide)s)."
    ),
    "register_indexed_models": gettext_noop(
        # Translators: %(name)s is a dotted Python path, %(guide)s a file.
        "%(name)s was removed after wagtail-vector-index 0.10.0: models using "
        "VectorIndexedMixin are found without registration (see %(guide)s)."
    ),
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        warnings.warn(
            _translate(
                gettext_noop(
                    # Translators: %(name)s is the name of a Python class, %(module)s
                    # the module it was imported from.
                    "Importing %(name)s from %(module)s is deprecated: use "
                    "`from wagtail_vector_index.index import %(name)s`."
                ),
                {"name": name, "module": __name__},
            ),
            DeprecationWarning,
            stacklevel=2,
        )
        from wagtail_vector_index import index

        return getattr(index, name)
    if name in _REMOVED:
        raise ImportError(
            _translate(
                _REMOVED[name],
                {"name": f"{__name__}.{name}", "guide": _UPGRADE_GUIDE},
            )
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
