"""The package as a guest in a production site (issue 21): requests under
``ATOMIC_REQUESTS`` that roll back, the ledger's writer thread on, streams
dropped by the site's code, several processes under one budget, async views
with Django's async-unsafe guard on.

Run by ``make test`` with tests/settings_production.py (a SQLite file) and
tests/settings_production_postgres.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.test import AsyncClient, Client, override_settings

from tests.utils import chat_requests
from wagtail_vector_index import ai, usage
from wagtail_vector_index.models import (
    AIBudgetReservation,
    AIUsageRecord,
    AIUsageTotal,
)

pytestmark = pytest.mark.django_db(transaction=True)

HELLO = [{"role": "user", "content": "Hello there"}]
#: The provider's reply: 14 tokens, as many as the views' calls reserve for
#: their answer (max_tokens=10) plus what the prompt is estimated above its
#: count, so that a call spends exactly what it reserved.
REPLY = " ".join(["word"] * 14)
REPOSITORY = Path(__file__).resolve().parents[2]


def per_call(settings):
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        return ai.get_chat_backend().estimate_prompt_tokens(HELLO) + 10


def ledger():
    usage.flush()
    return list(AIUsageRecord.objects.order_by("pk"))


def site_total(site):
    return AIUsageTotal.objects.get(scope=f"site:{site.pk}", period="month")


def test_rolled_back_requests_never_raise_the_budget(provider, site, settings_for):
    """Six requests whose views fail after their call (so their
    transactions roll back) against a budget for three calls: three reach
    the provider, each in the ledger; three are refused."""
    provider.state.reply = REPLY
    settings = settings_for(MONTHLY_BUDGET_TOKENS=3 * per_call(settings_for()))
    client = Client(raise_request_exception=False)
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        statuses = [
            client.post("/production/chat-then-fail/").status_code for _ in range(6)
        ]
    assert statuses == [500, 500, 500, 429, 429, 429]
    assert len(chat_requests(provider)) == 3
    records = ledger()
    assert [(r.site_id, r.outcome) for r in records] == [(site.pk, "success")] * 3
    total = site_total(site)
    assert (total.calls, total.tokens) == (3, sum(r.total_tokens for r in records))
    assert not AIBudgetReservation.objects.exists()


def test_the_refusal_gives_the_figures_of_the_check(provider, site, settings_for):
    provider.state.reply = REPLY
    call = per_call(settings_for())
    settings = settings_for(MONTHLY_BUDGET_TOKENS=call + call // 2)
    client = Client(raise_request_exception=False)
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        assert client.post("/production/chat-then-fail/").status_code == 500
        usage.flush()
        refused = client.post("/production/chat-then-fail/")
    assert refused.status_code == 429
    message = refused.content.decode()
    assert f"({call} tokens of {call + call // 2} tokens spent" in message
    assert f"This call would need about {call} tokens." in message


def test_a_call_in_a_rolled_back_block_is_recorded(provider, site, settings_for):
    with override_settings(
        WAGTAIL_VECTOR_INDEX=settings_for(MONTHLY_BUDGET_TOKENS=10**6)
    ):
        with pytest.raises(RuntimeError), transaction.atomic():
            ai.get_chat_backend(site=site).chat(messages=HELLO)
            raise RuntimeError("rolled back")
    assert [r.outcome for r in ledger()] == ["success"]
    assert site_total(site).calls == 1
    assert not AIBudgetReservation.objects.exists()


@pytest.mark.parametrize(
    "how, stopped", [("read", False), ("closed", True), ("dropped", True)]
)
def test_streams_leave_no_reservation(provider, site, settings_for, how, stopped):
    provider.state.reply = REPLY
    with override_settings(
        WAGTAIL_VECTOR_INDEX=settings_for(MONTHLY_BUDGET_TOKENS=10**6)
    ):
        response = Client().get(f"/production/stream/{how}/")
        assert response.status_code == 200
        if response.streaming:
            assert b"".join(response.streaming_content).decode() == REPLY
    (record,) = ledger()
    assert (record.streamed, record.stopped_early) == (True, stopped)
    assert not AIBudgetReservation.objects.exists()


def test_a_stream_dropped_in_a_failing_request(provider, site, settings_for):
    with override_settings(
        WAGTAIL_VECTOR_INDEX=settings_for(MONTHLY_BUDGET_TOKENS=10**6)
    ):
        response = Client(raise_request_exception=False).get(
            "/production/stream/dropped-then-fail/"
        )
    assert response.status_code == 500
    (record,) = ledger()
    assert record.stopped_early and record.site_id == site.pk
    assert not AIBudgetReservation.objects.exists()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's single write lock")
def test_a_request_holding_sqlites_write_lock(provider, site, settings_for):
    """A view that wrote before its call holds SQLite's write lock until
    its transaction ends: the budget check neither waits for it nor breaks
    the transaction, and the ledger row is written once the lock is free."""
    from wagtail.models import Site

    def write_then_chat():
        with transaction.atomic():
            Site.objects.filter(pk=site.pk).update(site_name="Written first")
            answer = ai.get_chat_backend(site=site).chat(messages=HELLO)
            # The transaction still works after the check.
            assert Site.objects.get(pk=site.pk).site_name == "Written first"
            return answer

    with override_settings(
        WAGTAIL_VECTOR_INDEX=settings_for(MONTHLY_BUDGET_TOKENS=10**6)
    ):
        assert write_then_chat().text
    assert [r.outcome for r in ledger()] == ["success"]
    assert not AIBudgetReservation.objects.exists()


class Interrupt(BaseException):
    """Not an Exception: what a receiver might raise (SystemExit, say)."""


def test_a_receiver_raising_does_not_stop_the_writer(provider, site, settings_for):
    def receiver(sender, **kwargs):
        raise Interrupt("a receiver of the site's")

    usage.budget_threshold_reached.connect(receiver)
    try:
        with override_settings(
            WAGTAIL_VECTOR_INDEX=settings_for(
                MONTHLY_BUDGET_TOKENS=1000, ALERT_THRESHOLD=0.001
            )
        ):
            backend = ai.get_chat_backend(site=site)
            backend.chat(messages=HELLO)
            assert usage.flush(timeout=10)
            backend.chat(messages=HELLO)
            assert usage.flush(timeout=10)
    finally:
        usage.budget_threshold_reached.disconnect(receiver)
    assert len(ledger()) == 2
    assert site_total(site).tokens_alert_sent


def test_async_calls_from_an_asgi_view(provider, site, settings_for):
    """Django's async-unsafe guard is on: a database query on the event
    loop's thread would raise SynchronousOnlyOperation."""
    assert not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    with override_settings(
        WAGTAIL_VECTOR_INDEX=settings_for(NO_SITE_MONTHLY_BUDGET_TOKENS=10**6)
    ):
        response = async_to_sync(AsyncClient().get)("/production/achat/")
    assert response.status_code == 200, response.content
    assert json.loads(response.content)["text"]
    records = ledger()
    assert [(r.streamed, r.stopped_early) for r in records] == [
        (False, False),
        (True, True),
    ]
    assert not AIBudgetReservation.objects.exists()


CALLER = """
import os, sys, django
django.setup()
from django.test import override_settings
from tests.utils import chat_backend_settings
from wagtail_vector_index import ai, usage
from wagtail_vector_index.exceptions import AIBudgetExceededError

class Provider:
    url = os.environ["WVI_TEST_PROVIDER"]
    openai_base = url + "/v1"

settings = {
    "CHAT_BACKENDS": {"default": chat_backend_settings(Provider())},
    "USAGE": {"NO_SITE_MONTHLY_BUDGET_TOKENS": int(os.environ["WVI_BUDGET"])},
}
answered = refused = 0
with override_settings(WAGTAIL_VECTOR_INDEX=settings):
    backend = ai.get_chat_backend()
    for _ in range(int(os.environ["WVI_CALLS"])):
        try:
            backend.chat(messages=[{"role": "user", "content": "Hello there"}],
                         max_tokens=10)
            answered += 1
        except AIBudgetExceededError:
            refused += 1
usage.flush()
print(answered, refused)
"""


def database_for_subprocesses():
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return str(settings["NAME"])
    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    return (
        f"postgresql://{settings['USER']}{password}@{settings['HOST']}:"
        f"{settings['PORT']}/{settings['NAME']}"
    )


def test_two_processes_stay_within_the_budget(provider, site, settings_for):
    """Two processes, ten calls each, at once, against a budget for seven:
    seven reach the provider, and what they spent is within the budget
    (each call reserves what it spends, so the documented margin, what calls
    in flight spend beyond their reservations, is 0 here)."""
    provider.state.reply = REPLY
    provider.state.latency = 0.05
    call = per_call(settings_for())
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_subprocess",
        "WVI_TEST_DATABASE": database_for_subprocesses(),
        "WVI_TEST_PROVIDER": provider.url,
        "WVI_BUDGET": str(7 * call),
        "WVI_CALLS": "10",
        "OPENAI_API_KEY": "sk-test-two-processes",
    }
    env.pop("WVI_POSTGRES_URL", None)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CALLER],
            cwd=REPOSITORY,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr
        results.append([int(n) for n in stdout.split()[-2:]])
    assert sum(answered for answered, _refused in results) == 7
    assert len(chat_requests(provider)) == 7
    total = AIUsageTotal.objects.get(scope="site:none", period="month")
    assert total.calls == 7 and total.tokens <= 7 * call
    assert not AIBudgetReservation.objects.exists()


def test_the_hosts_models_keep_fast_delete(settings_for):
    """Installing the app, even with AUTO_UPDATE on, leaves Django's fast
    delete to every model no index covers."""
    from django.contrib.sessions.models import Session
    from django.db.models.deletion import Collector

    with override_settings(WAGTAIL_VECTOR_INDEX={"AUTO_UPDATE": True}):
        assert Collector(using="default").can_fast_delete(Session.objects.all())


def test_the_timeout_bounds_a_call_with_two_slow_fallbacks(provider, settings_for):
    import time

    from tests.utils import chat_backend_settings
    from wagtail_vector_index.exceptions import AITimeoutError

    settings = {
        "CHAT_BACKENDS": {
            "default": chat_backend_settings(provider, FALLBACKS=["second", "third"]),
            "second": chat_backend_settings(provider),
            "third": chat_backend_settings(provider),
        }
    }
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        # LiteLLM's first call in a process loads most of it: not measured.
        ai.get_chat_backend().chat(messages=HELLO)
        provider.state.latency = 3
        started = time.monotonic()
        with pytest.raises(AITimeoutError):
            ai.get_chat_backend().chat(messages=HELLO, timeout=1)
        assert time.monotonic() - started < 1.5
