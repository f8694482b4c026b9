"""Keep indexes current when content is published, unpublished, moved or
deleted.

Opt-in: ``WAGTAIL_VECTOR_INDEX["AUTO_UPDATE"] = True``. Work starts after the
transaction commits, through Django's tasks framework when ``TASKS`` is
configured and synchronously otherwise.

Receivers are connected per indexed model (the models some registered index
covers), and only while ``AUTO_UPDATE`` is on, like Wagtail's search index
(``modelsearch/signal_handlers.py``). A ``post_delete`` receiver without a
sender would make Django read every row of every model of the host site
before deleting it (``Collector.can_fast_delete`` is False for any model with
a receiver), so no other model of the site pays for our updates.

:func:`sync` makes the connected set match the settings and the registry. It
runs from the app's ``ready()``, whenever ``WAGTAIL_VECTOR_INDEX`` changes
(``override_settings`` in tests), and when an index is registered after the
registry was first read (``register_index`` in another app's ``ready()``).

A page moved under another parent is updated with its descendants: their
tree paths, stored with their chunks for scoped searches, changed. Wagtail
sends ``post_page_move`` for the moved page's own model only, so moving a
page of a model no index covers leaves its indexed descendants' stored paths
out of date until the next ``update_vector_indexes`` (which rewrites them in
place, without a provider call); until then a site's search can miss them,
never show them elsewhere (the objects found are checked again).
"""

from __future__ import annotations

import threading
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from wagtail.models import Page
from wagtail.signals import page_published, page_unpublished, post_page_move

from wagtail_vector_index import conf
from wagtail_vector_index.index import registry


def _indexes_for(model: type) -> list[Any]:
    return [index for index in registry.get_indexes().values() if index.covers(model)]


def schedule(instance: Any) -> None:
    """Update every index covering ``instance`` once the transaction commits."""
    if not conf.get_auto_update():
        return
    from django.contrib.contenttypes.models import ContentType

    indexes = _indexes_for(type(instance))
    if not indexes:
        return
    content_type_id = ContentType.objects.get_for_model(instance).pk
    object_id = str(instance.pk)

    def run() -> None:
        from wagtail_vector_index.index import tasks

        for index in indexes:
            # Django 6 has a default TASKS; only a project's own choice counts.
            if settings.is_overridden("TASKS"):
                tasks.update_object_task.enqueue(index.name, content_type_id, object_id)
            else:
                tasks.run_inline(index.name, content_type_id, object_id)

    transaction.on_commit(run)


def _on_page_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    schedule(instance)


def _on_page_move(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A page moved under another parent: it and its descendants have new
    tree paths, which scoped searches filter on (see ``scope.attributes``),
    so each indexed one is updated (its vectors are reused)."""
    if kwargs.get("parent_page_before") == kwargs.get("parent_page_after"):
        return  # Reordered among its siblings: the same site.
    pages = Page.objects.descendant_of(instance, inclusive=True).specific()
    for page in pages.iterator(chunk_size=200):
        if _indexes_for(type(page)):
            schedule(page)


def _on_save(sender: Any, instance: Any, **kwargs: Any) -> None:
    schedule(instance)


def _on_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    schedule(instance)


def _receivers(model: type) -> list[tuple[Any, Any]]:
    """The (signal, receiver) pairs ``model`` needs."""
    if issubclass(model, Page):
        # Pages change the index on publish and unpublish; saving a draft
        # changes nothing that is indexed, so no post_save for pages.
        return [
            (page_published, _on_page_change),
            (page_unpublished, _on_page_change),
            (post_page_move, _on_page_move),
            (post_delete, _on_delete),
        ]
    return [(post_save, _on_save), (post_delete, _on_delete)]


#: The models whose receivers are connected now.
_connected: set[type] = set()
_lock = threading.Lock()


def indexed_models() -> set[type]:
    """Every installed model (proxies included: Django sends their signals
    with the proxy as sender) that some registered index covers."""
    from django.apps import apps

    indexes = list(registry.get_indexes().values())
    return {
        model
        for model in apps.get_models()
        if any(index.covers(model) for index in indexes)
    }


def connected_models() -> frozenset[type]:
    """The models our receivers are connected for (for tests and checks)."""
    return frozenset(_connected)


def sync() -> None:
    """Connect the receivers of every indexed model while ``AUTO_UPDATE`` is
    on; disconnect them all while it is off."""
    # With AUTO_UPDATE off the registry is not even read: nothing to connect.
    wanted = indexed_models() if conf.get_auto_update() else set()
    with _lock:
        for model in _connected - wanted:
            for signal, receiver in _receivers(model):
                signal.disconnect(receiver, sender=model)
        for model in wanted - _connected:
            for signal, receiver in _receivers(model):
                # Module-level functions: a strong reference costs nothing.
                signal.connect(receiver, sender=model, weak=False)
        _connected.clear()
        _connected.update(wanted)


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == conf.SETTING_NAME:
        sync()


def _on_index_registered(**kwargs: Any) -> None:
    sync()


def connect() -> None:
    """Called once from the app's ``ready()``."""
    setting_changed.connect(_on_setting_changed, dispatch_uid="wvi-index-signals")
    registry.index_registered.connect(
        _on_index_registered, dispatch_uid="wvi-index-signals"
    )
    sync()
