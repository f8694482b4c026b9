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

from django.core.exceptions import AppRegistryNotReady, ImproperlyConfigured
from django.utils.translation import gettext, gettext_noop

_UPGRADE_GUIDE = "docs/upgrading.md"

#: 0.10.0 names of this package whose meaning changed: they fail with a
#: message saying what replaces them.
_REMOVED = {
    "registry": gettext_noop(
        # Translators: %(name)s is a dotted Python path, %(guide)s a file.
        "%(name)s was removed after wagtail-vector-index 0.10.0: register custom "
        "indexes with the wagtail_vector_index.index.register_index decorator "
        "(see %(guide)s)."
    ),
    "get_storage_provider": gettext_noop(
        # Translators: %(name)s is a dotted Python path, %(guide)s a file.
        "%(name)s was removed after wagtail-vector-index 0.10.0: choose the "
        'storage with WAGTAIL_VECTOR_INDEX["STORAGE"] (see %(guide)s).'
    ),
    "get_storage_provider_config": gettext_noop(
        "%(name)s was removed after wagtail-vector-index 0.10.0: choose the "
        'storage with WAGTAIL_VECTOR_INDEX["STORAGE"] (see %(guide)s).'
    ),
    "InvalidStorageProviderError": gettext_noop(
        # Translators: %(name)s is a dotted Python path, %(guide)s a file.
        "%(name)s was removed after wagtail-vector-index 0.10.0: storage "
        "mistakes are reported by manage.py check (see %(guide)s)."
    ),
}


def _translate(message: str, values: dict[str, Any]) -> str:
    """``gettext(message) % values``, in English where Django cannot translate
    yet: these names may be imported before the app registry is ready (or
    with no settings at all), and the import must still fail or warn with
    its own message."""
    try:
        message = gettext(message)
    except (AppRegistryNotReady, ImproperlyConfigured):
        pass
    return message % values


def __getattr__(name: str) -> Any:
    if name in _REMOVED:
        raise ImportError(
            _translate(
                _REMOVED[name],
                {"name": f"{__name__}.{name}", "guide": _UPGRADE_GUIDE},
            )
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
