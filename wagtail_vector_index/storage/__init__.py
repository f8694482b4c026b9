"""What is left of wagtail-vector-index 0.10.0's ``storage`` package.

Only what an upgrading site still refers to lives here:

- ``wagtail_vector_index.storage.pgvector``, 0.10.0's pgvector app: kept so
  its ``INSTALLED_APPS`` entry does not crash start-up and its migrations drop
  its table (``manage.py check`` names the replacement, ``W006``);
- ``wagtail_vector_index.storage.models``: 0.10.0's import path of
  ``VectorIndexedMixin`` and ``EmbeddingField`` (deprecated).

Vectors are now stored by :mod:`wagtail_vector_index.index.storage`; see
docs/upgrading.md.
"""

from typing import Any

#: 0.10.0 names of this package whose meaning changed: they fail with a
#: message saying what replaces them.
_REMOVED = {
    "registry": "register custom indexes with the "
    "wagtail_vector_index.index.register_index decorator",
    "get_storage_provider": 'choose the storage with WAGTAIL_VECTOR_INDEX["STORAGE"]',
    "get_storage_provider_config": "choose the storage with "
    'WAGTAIL_VECTOR_INDEX["STORAGE"]',
    "InvalidStorageProviderError": "storage mistakes are reported by manage.py check",
}


def __getattr__(name: str) -> Any:
    if name in _REMOVED:
        raise ImportError(
            f"wagtail_vector_index.storage.{name} was removed after "
            f"wagtail-vector-index 0.10.0: {_REMOVED[name]} (see docs/upgrading.md)."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
