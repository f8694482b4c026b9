"""The background task that keeps an index current for one object."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType

try:  # The backport Wagtail itself uses; Django 6 ships the same API.
    from django_tasks import task
except ImportError:  # pragma: no cover - depends on the installed packages
    from django.tasks import task  # type: ignore[no-redef]

from wagtail_vector_index import usage
from wagtail_vector_index.exceptions import WagtailVectorIndexError
from wagtail_vector_index.index.registry import get_index
from wagtail_vector_index.redaction import get_logger

logger = get_logger(__name__)


@usage.labelled(usage.PUBLISH_UPDATE)
def update_object(index_name: str, content_type_id: int, object_id: str) -> None:
    """Re-index one object, or remove it if it is gone or no longer public.

    Its provider calls are recorded in the usage ledger as "publish-time
    update"."""
    index = get_index(index_name)
    model = ContentType.objects.get_for_id(content_type_id).model_class()
    obj = model._default_manager.filter(pk=object_id).first() if model else None
    if obj is None:
        index.remove_key(content_type_id, object_id)
    else:
        index.update_object(obj)


@task()
def update_object_task(index_name: str, content_type_id: int, object_id: str) -> None:
    update_object(index_name, content_type_id, object_id)


def run_inline(index_name: str, content_type_id: int, object_id: str) -> None:
    """Run now; a failure is logged, never raised into a publish (which has
    committed by then: the editor's page is published either way, and the
    next ``update_vector_indexes`` catches up)."""
    try:
        update_object(index_name, content_type_id, object_id)
    except WagtailVectorIndexError as error:
        logger.warning(
            "Could not update vector index %s for %s/%s: %s",
            index_name,
            content_type_id,
            object_id,
            error,
        )
    except Exception:  # A database error (SQLite "database is locked"), a bug.
        logger.exception(
            "Could not update vector index %s for %s/%s",
            index_name,
            content_type_id,
            object_id,
        )
