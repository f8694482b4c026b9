"""Keep indexes current when content is published, unpublished or deleted.

Opt-in: ``WAGTAIL_VECTOR_INDEX["AUTO_UPDATE"] = True``. Work starts after the
transaction commits, through Django's tasks framework when ``TASKS`` is
configured and synchronously otherwise.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from wagtail.models import Page
from wagtail.signals import page_published, page_unpublished

from wagtail_vector_index import conf


def _indexes_for(model: type) -> list[Any]:
    from wagtail_vector_index.index.registry import get_indexes

    return [index for index in get_indexes().values() if index.covers(model)]


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


def _on_save(sender: Any, instance: Any, **kwargs: Any) -> None:
    # Pages are handled on publish and unpublish; saving a draft changes
    # nothing that is indexed.
    if not isinstance(instance, Page):
        schedule(instance)


def _on_delete(sender: Any, instance: Any, **kwargs: Any) -> None:
    schedule(instance)


def connect() -> None:
    page_published.connect(_on_page_change, dispatch_uid="wvi-published")
    page_unpublished.connect(_on_page_change, dispatch_uid="wvi-unpublished")
    post_save.connect(_on_save, dispatch_uid="wvi-post-save")
    post_delete.connect(_on_delete, dispatch_uid="wvi-post-delete")
