import os
import sys

import pytest
from django.core.cache import cache
from django.test import override_settings

from tests.providers import ProviderServer
from tests.utils import (
    ECHO_CHAT,
    HASHING_EMBEDDING,
    TEST_API_KEY,
    chat_backend_settings,
    embedding_backend_settings,
    make_user,
)

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# The local embedding backend's tests load models from installed packages,
# never from the Hugging Face Hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_configure(config):
    """Python 3.10 and 3.11 can crash (SIGSEGV in ``_PyHamt_Assoc``) when the
    cyclic garbage collector starts in the middle of a ``ContextVar.set()``
    and a finaliser it runs sets a context variable again: CPython issue
    148891, open, and no 3.11 release will fix it; 3.12 and later do not
    trigger it from Python code.

    The package's own objects no longer depend on the collector: a stream
    (LiteLLM's wrapper included) is freed, closed and recorded by reference
    counting, read or not (tests/test_stream_lifetime.py shows it with the
    collector off), and the production suite (tests/settings_production.py)
    runs with the collector on. This suite, though, makes hundreds of
    thousands of context-variable sets next to finalisers that are not ours
    (event loops, HTTP clients and servers made and dropped per test), and
    crashed in about one full run of three on 3.11 before the streams were
    freed without it. So on those interpreters the collector never starts by
    itself during these tests (unless ``WVI_TEST_GC=1``);
    :func:`pytest_runtest_teardown` collects between tests, where no thread
    is inside a ``ContextVar.set()``. It changes no result."""
    import gc

    if _COLLECT_BETWEEN_TESTS and not _as_in_production() and not _COLLECTOR_ON:
        gc.disable()


def _as_in_production() -> bool:
    """The production suite (``--ds=tests.settings_production``) runs with
    the collector on, as a site does."""
    return "settings_production" in os.environ.get("DJANGO_SETTINGS_MODULE", "")


#: tests/production runs only with its own settings (and only it does).
collect_ignore_glob = [] if _as_in_production() else ["production/*"]


#: Python before 3.12: garbage is collected between tests only (see
#: :func:`pytest_configure`).
_COLLECT_BETWEEN_TESTS = sys.version_info < (3, 12)
#: ``WVI_TEST_GC=1``: the collector on for this suite too, on any Python
#: (four full runs on 3.11 so, 2026-12-06: none crashed).
_COLLECTOR_ON = os.environ.get("WVI_TEST_GC") == "1"


def pytest_runtest_teardown(item, nextitem):
    import gc

    if _COLLECT_BETWEEN_TESTS and not gc.isenabled() and gc.get_count()[0] > 50_000:
        gc.collect()


@pytest.fixture(scope="session")
def _provider_server():
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
def provider(_provider_server, monkeypatch):
    """The loopback provider, reset, with ``OPENAI_API_KEY`` set for LiteLLM."""
    _provider_server.reset()
    monkeypatch.setenv("OPENAI_API_KEY", TEST_API_KEY)
    yield _provider_server
    _provider_server.reset()


@pytest.fixture
def content_type(db):
    """A content type id for chunks written straight into a storage
    (``tests.storage.fill``)."""
    from django.contrib.contenttypes.models import ContentType

    from wagtail_vector_index.models import IndexState

    return ContentType.objects.get_for_model(IndexState).pk


# -- the admin pages ---------------------------------------------------------


@pytest.fixture(autouse=True, scope="session")
def _ledger_writes_in_the_test_thread(django_db_setup):
    # The usage ledger is written by a thread of its own by default; a test's
    # transaction is invisible to it. tests/test_usage_ledger.py tests that
    # thread with transaction=True, and tests/production runs with it.
    from wagtail_vector_index import usage

    if _as_in_production():
        yield
        return
    usage.write_in_background(False)
    yield
    usage.write_in_background(True)


@pytest.fixture(autouse=True)
def _ledger_written_after_each_test():
    """With the writer thread on (the production suite), what a test's calls
    queued is written before the next test starts: on SQLite, a write of the
    writer's overlapping a test's deferred transaction fails that
    transaction ("database is locked"; see docs/usage.md, On SQLite)."""
    yield
    if _as_in_production():
        from wagtail_vector_index import usage

        usage.flush()


@pytest.fixture
def empty_ledger(db):
    """An empty usage ledger: calls that earlier tests made from other
    threads (outside their test's transaction) may have left rows behind."""
    from wagtail_vector_index.models import AIUsageRecord, AIUsageTotal

    AIUsageRecord.objects.all().delete()
    AIUsageTotal.objects.all().delete()


@pytest.fixture(autouse=True)
def _clear_cache():
    # Rate-limit counters and cached site overrides must not leak between
    # tests (primary keys are reused after each test's rollback).
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def editor():
    """Admin access and the test pages, but not the AI settings."""
    return make_user("editor", "use_ai_test_pages")


@pytest.fixture
def settings_editor():
    """The test pages and the permission to change the AI settings."""
    return make_user("settings-editor", "use_ai_test_pages", "change_aisettings")


@pytest.fixture
def outsider():
    """Admin access only."""
    return make_user("outsider")


@pytest.fixture
def backends(provider):
    """Chat "default" and "writer" and embedding "default" over HTTP to the
    loopback server; "offline" backends of both kinds."""
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {
                "default": chat_backend_settings(
                    provider, DEFAULT_PARAMETERS={"temperature": 0.4}
                ),
                "writer": chat_backend_settings(provider, model="openai/test-writer"),
                "offline": {"CLASS": ECHO_CHAT, "CONFIG": {}},
            },
            "EMBEDDING_BACKENDS": {
                "default": embedding_backend_settings(provider),
                "offline": {"CLASS": HASHING_EMBEDDING, "CONFIG": {}},
            },
        }
    ):
        yield provider
