"""A guest in the host site: Django's fast delete holds for every model we do
not index, and our own bulk deletes are single statements.

A ``post_delete`` receiver connected without a sender makes Django read
every row of every model before deleting it (one query per related model and
the rows in memory); ours are connected per indexed model, and only while
``AUTO_UPDATE`` is on.
"""

import datetime
import io

import numpy as np
import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.db.models.deletion import Collector
from django.db.models.signals import post_delete, post_save
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from wagtail.models import ModelLogEntry, Page
from wagtail.signals import page_published

from tests.storage import chunk_model, fill
from tests.testapp.models import ArticlePage, Book
from tests.utils import OFFLINE
from wagtail_vector_index import embedding_cache
from wagtail_vector_index.index import register_index, registry, signals
from wagtail_vector_index.index.base import VectorIndex
from wagtail_vector_index.index.storage import DatabaseStorage
from wagtail_vector_index.models import AIUsageRecord, EmbeddingCacheEntry

pytestmark = pytest.mark.django_db

AUTO = {**OFFLINE, "AUTO_UPDATE": True}


def can_fast_delete(model):
    return Collector(using="default").can_fast_delete(model.objects.all())


def ours(signal, model):
    """Whether one of our receivers is connected to ``signal`` for ``model``."""
    return any(
        receiver in (signals._on_save, signals._on_delete, signals._on_page_change)
        for receiver in signal._live_receivers(model)[0]
    )


# -- the host site's models -----------------------------------------------------


@pytest.mark.parametrize("settings_value", [OFFLINE, AUTO], ids=["off", "on"])
def test_models_we_do_not_index_keep_fast_delete(settings_value):
    with override_settings(WAGTAIL_VECTOR_INDEX=settings_value):
        assert can_fast_delete(Session)
        assert can_fast_delete(ModelLogEntry)  # Wagtail's audit log.


@override_settings(WAGTAIL_VECTOR_INDEX=AUTO)
def test_deleting_many_rows_of_another_model_is_one_statement(
    django_assert_max_num_queries,
):
    expiry = timezone.now() + datetime.timedelta(days=1)
    Session.objects.bulk_create(
        Session(session_key=f"key{i:04}", session_data="x", expire_date=expiry)
        for i in range(200)
    )
    with django_assert_max_num_queries(1):
        assert Session.objects.all().delete()[0] == 200


def test_nothing_is_connected_while_auto_update_is_off():
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        assert signals.connected_models() == frozenset()
        assert not ours(post_save, Book)
        assert not ours(post_delete, Book)
        assert not ours(page_published, ArticlePage)
        assert can_fast_delete(Book)


def test_indexed_models_are_connected_while_auto_update_is_on():
    with override_settings(WAGTAIL_VECTOR_INDEX=AUTO):
        assert {Book, ArticlePage} <= signals.connected_models()
        assert ours(post_save, Book) and ours(post_delete, Book)
        assert ours(page_published, ArticlePage) and ours(post_delete, ArticlePage)
        # Saving a draft changes nothing indexed: no post_save for pages.
        assert not ours(post_save, ArticlePage)
        assert not ours(post_delete, Page)  # Not indexed itself.
        assert not can_fast_delete(Book)
    # override_settings leaving puts everything back.
    assert signals.connected_models() == frozenset()
    assert not ours(post_delete, Book)


@override_settings(WAGTAIL_VECTOR_INDEX=AUTO)
def test_an_indexed_model_still_schedules_updates(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        book = Book.objects.create(title="Night sky", blurb="stars")
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        book.delete()
    assert len(callbacks) == 1


def test_an_index_registered_later_is_connected_too(monkeypatch):
    """An index registered in another app's ready(), after ours has read the
    registry, still gets its receivers."""
    monkeypatch.setattr(registry, "_custom", dict(registry._custom))

    class SessionIndex(VectorIndex):
        name = "test.sessions"

        def get_querysets(self):
            return [Session.objects.all()]

    with override_settings(WAGTAIL_VECTOR_INDEX=AUTO):
        registry.get_indexes()  # The registry has been read.
        assert Session not in signals.connected_models()
        register_index(SessionIndex)
        try:
            assert Session in signals.connected_models()
            assert not can_fast_delete(Session)
        finally:
            monkeypatch.undo()
            signals.sync()
        assert Session not in signals.connected_models()
    assert can_fast_delete(Session)


# -- our own bulk deletes ---------------------------------------------------------


def test_our_models_keep_fast_delete():
    with override_settings(WAGTAIL_VECTOR_INDEX=AUTO):
        for model in (chunk_model(), EmbeddingCacheEntry, AIUsageRecord):
            assert can_fast_delete(model), model


def deletes(queries):
    return [q["sql"] for q in queries if q["sql"].startswith("DELETE")]


def test_clearing_the_embedding_cache_is_one_statement():
    rng = np.random.default_rng(1)
    embedding_cache.store(
        "m", 8, {f"{i:064x}": rng.random(8, dtype=np.float32) for i in range(30)}
    )
    with CaptureQueriesContext(connection) as queries:
        assert embedding_cache.clear("m") == 30
    assert len(queries) == 1 and len(deletes(queries.captured_queries)) == 1


def test_dropping_an_index_deletes_its_chunks_in_one_statement(content_type):
    storage = DatabaseStorage("fast.drop")
    fill(storage, content_type, np.ones((40, 8), dtype=np.float32))
    table = storage.model._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        storage.drop()
    on_chunks = [sql for sql in deletes(queries.captured_queries) if table in sql]
    assert len(on_chunks) == 1
    # Nothing read the chunks (and their vectors) before deleting them.
    assert not [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and table in q["sql"]
    ]
    assert not storage.model.objects.filter(index_name="fast.drop").exists()


def test_old_builds_are_deleted_in_one_statement(content_type):
    storage = DatabaseStorage("fast.rebuild")
    fill(storage, content_type, np.ones((40, 8), dtype=np.float32))
    table = storage.model._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        fill(storage, content_type, np.ones((40, 8), dtype=np.float32))
    on_chunks = [sql for sql in deletes(queries.captured_queries) if table in sql]
    assert on_chunks  # The first build's rows went...
    # ...without reading them (and their vectors) first: the ORM would
    # select every column, "vector" among them, to send post_delete.
    assert not [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT")
        and f'"{table}"."vector"' in q["sql"].split(" FROM ")[0]
    ]
    assert storage.model.objects.filter(index_name="fast.rebuild").count() == 40


@override_settings(WAGTAIL_VECTOR_INDEX={**OFFLINE, "USAGE": {"RETENTION_DAYS": 1}})
def test_pruning_the_ledger_deletes_in_one_statement():
    long_ago = timezone.now() - datetime.timedelta(days=10)
    AIUsageRecord.objects.bulk_create(
        AIUsageRecord(created_at=long_ago, kind="chat", alias="a", model_id="m")
        for _ in range(50)
    )
    with CaptureQueriesContext(connection) as queries:
        call_command("prune_ai_usage", stdout=io.StringIO())
    assert len(deletes(queries.captured_queries)) == 1
    assert not AIUsageRecord.objects.exists()
