"""The ledger's writer thread, against the test database in autocommit (the
other ledger tests write in the test's own thread, inside its transaction).

Named to run before tests/test_upgrade_migrations.py among the tests without
a transaction: that module leaves the schema at migration 0002 when it ends,
without the ledger's tables."""

import logging

import pytest
from django.test import override_settings

from tests.utils import chat_backend_settings, embedding_backend_settings, run_async
from wagtail_vector_index import ai, usage
from wagtail_vector_index.models import AIUsageRecord, AIUsageTotal

HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture
def http(provider):
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {"default": chat_backend_settings(provider)},
            "EMBEDDING_BACKENDS": {"default": embedding_backend_settings(provider)},
        }
    ):
        yield provider


def run(make_coroutine):
    async def call():
        return await make_coroutine()

    return run_async(call)


def month_total():
    return AIUsageTotal.objects.get(
        period="month", start=usage.period_start("month"), scope="site:none"
    )


@pytest.fixture
def autocommit(django_db_setup, django_db_blocker):
    """The test database in autocommit, so that the writer thread sees what
    is committed (a transactional test would flush the database afterwards,
    taking Wagtail's root page from the tests that follow); the ledger rows
    are deleted afterwards."""
    with django_db_blocker.unblock():
        try:
            yield
        finally:
            usage.flush()
            AIUsageRecord.objects.all().delete()
            AIUsageTotal.objects.all().delete()


def test_the_writer_thread(autocommit, http, monkeypatch, caplog):
    """By default rows are written by a thread of their own: the call does
    not wait for the database's commit."""
    import threading

    AIUsageRecord.objects.all().delete()
    AIUsageTotal.objects.all().delete()

    saved_in = []
    insert_records = usage.insert_records

    def recording_insert(records):
        saved_in.append((threading.current_thread().name, len(records)))
        return insert_records(records)

    monkeypatch.setattr(usage, "insert_records", recording_insert)
    usage.write_in_background(True)
    try:
        ai.get_chat_backend().chat(messages=HELLO)
        run(lambda: ai.get_chat_backend().achat(messages=HELLO))
        list(ai.get_embedding_backend().embed(["one"]))
        usage.flush()
        assert {name for name, _count in saved_in} == {"wagtail-vector-index-usage"}
        assert sum(count for _name, count in saved_in) == 3
        assert month_total().calls == 3

        def broken(*args, **kwargs):
            raise RuntimeError("the ledger table is gone")

        monkeypatch.setattr(usage, "insert_records", broken)
        with caplog.at_level(logging.ERROR, logger="wagtail_vector_index.usage"):
            assert ai.get_chat_backend().chat(messages=HELLO).text
            usage.flush()
        assert any("Could not record" in r.getMessage() for r in caplog.records)
    finally:
        usage.write_in_background(False)
    assert AIUsageRecord.objects.count() == 3


def test_rows_go_only_to_the_database_the_call_used(autocommit, http, caplog, tmp_path):
    """A call that started while its alias named another database (a test
    run's, since ended) is not written to the one the alias names now."""
    elsewhere = tmp_path / "the-test-run.sqlite3"
    usage.write_in_background(True)
    try:
        call = usage.begin(ai.get_chat_backend(), "chat", input_count=1)
        call.target = ("default", str(elsewhere))
        with caplog.at_level(logging.WARNING, logger="wagtail_vector_index.usage"):
            call.succeeded(prompt_tokens=1, completion_tokens=1, cost=None)
            assert usage.flush(timeout=10)
    finally:
        usage.write_in_background(False)
    assert not AIUsageRecord.objects.exists()
    assert not elsewhere.exists()
    assert any("no longer configured" in r.getMessage() for r in caplog.records)


def test_flush_waits_a_bounded_time(autocommit, http, monkeypatch):
    import threading
    import time

    release = threading.Event()
    write_records = usage.write_records

    def slow(items, **kwargs):
        release.wait(10)
        return write_records(items, **kwargs)

    monkeypatch.setattr(usage, "write_records", slow)
    usage.write_in_background(True)
    try:
        ai.get_chat_backend().chat(messages=HELLO)
        started = time.monotonic()
        assert usage.flush(timeout=0.5) is False
        assert time.monotonic() - started < 2
        release.set()
        assert usage.flush(timeout=10) is True
    finally:
        release.set()
        usage.write_in_background(False)
    assert AIUsageRecord.objects.count() == 1


def test_a_receiver_raising_anything_does_not_stop_the_writer(autocommit, http):
    class Interrupt(BaseException):
        pass

    def receiver(sender, **kwargs):
        raise Interrupt

    usage.budget_threshold_reached.connect(receiver)
    settings = {
        "CHAT_BACKENDS": {"default": chat_backend_settings(http)},
        "USAGE": {"NO_SITE_MONTHLY_BUDGET_TOKENS": 1000, "ALERT_THRESHOLD": 0.001},
    }
    usage.write_in_background(True)
    try:
        with override_settings(WAGTAIL_VECTOR_INDEX=settings):
            ai.get_chat_backend().chat(messages=HELLO)
            assert usage.flush(timeout=10)
            ai.get_chat_backend().chat(messages=HELLO)
            assert usage.flush(timeout=10)
    finally:
        usage.budget_threshold_reached.disconnect(receiver)
        usage.write_in_background(False)
    assert AIUsageRecord.objects.count() == 2
    assert month_total().tokens_alert_sent
