"""The indexes ``update_vector_indexes`` and the admin know about."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.dispatch import Signal
from django.utils.module_loading import autodiscover_modules

_custom: dict[str, Any] = {}
_discovered = False

#: Sent when an index is registered after the registry was first read (from
#: another app's ``ready()``, say), so that whoever acted on the registry
#: (the auto-update receivers) can look again. Keyword argument: ``index``.
index_registered = Signal()


def register_index(index: Any) -> Any:
    """Register a custom index (an instance, or a class built with no arguments).

    Usable as a class decorator. Put custom indexes in a ``vector_indexes``
    module of any installed app: it is imported when indexes are listed.
    """
    instance = index() if isinstance(index, type) else index
    if instance.name in _custom and type(_custom[instance.name]) is not type(instance):
        raise ValueError(
            f'A vector index named "{instance.name}" is already registered.'
        )
    _custom[instance.name] = instance
    if _discovered:
        # While the registry is being discovered, whoever reads it gets the
        # complete list afterwards; only a later registration needs telling.
        index_registered.send(sender=type(instance), index=instance)
    return index


def get_indexes() -> dict[str, Any]:
    """Every index by name: one per model using VectorIndexedMixin, then the
    registered custom ones."""
    global _discovered
    if not _discovered:
        autodiscover_modules("vector_indexes")
        _discovered = True
    from wagtail_vector_index.index.mixins import VectorIndexedMixin

    indexes: dict[str, Any] = {}
    for model in apps.get_models():
        if issubclass(model, VectorIndexedMixin) and getattr(
            model, "embedding_fields", None
        ):
            index = model.vector_index
            indexes[index.name] = index
    indexes.update(_custom)
    return indexes


def get_index(name: str) -> Any:
    indexes = get_indexes()
    if name not in indexes:
        known = ", ".join(sorted(indexes)) or "none"
        raise KeyError(f'No vector index named "{name}" (known: {known}).')
    return indexes[name]
