"""Streams are released and recorded by reference counting alone: read to
the end, closed, or dropped unread, sync and async, with Python's cyclic
garbage collector off, LiteLLM's own stream wrapper included, and a budget's
reservation given back each time (issue 21, item 3)."""

import gc
import time
import weakref

import pytest
from django.test import override_settings

from tests.utils import chat_backend_settings, run_async
from wagtail_vector_index import ai
from wagtail_vector_index.ai_utils.backends import litellm as litellm_backend
from wagtail_vector_index.models import (
    AIBudgetReservation,
    AIUsageRecord,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_ledger")]

HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture
def http(provider):
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {"default": chat_backend_settings(provider)},
            # A budget, so that every call holds a reservation until recorded.
            "USAGE": {"NO_SITE_MONTHLY_BUDGET_TOKENS": 1_000_000},
        }
    ):
        yield provider


@pytest.fixture
def no_collector():
    """The cyclic garbage collector off: what is freed here is freed by
    reference counting."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@pytest.fixture
def wrappers(monkeypatch):
    """Weak references to the stream objects LiteLLM hands out."""
    made = []
    original = litellm_backend._litellm

    class Spy:
        def __getattr__(self, name):
            return getattr(original(), name)

        def completion(self, *args, **kwargs):
            stream = original().completion(*args, **kwargs)
            made.append(weakref.ref(stream))
            return stream

        async def acompletion(self, *args, **kwargs):
            stream = await original().acompletion(*args, **kwargs)
            made.append(weakref.ref(stream))
            return stream

    monkeypatch.setattr(litellm_backend, "_litellm", lambda: Spy())
    return made


def the_record():
    (record,) = AIUsageRecord.objects.all()
    return record


def assert_released(response_ref, wrappers):
    assert response_ref() is None, gc.get_referrers(response_ref())
    # LiteLLM hands a bound method of its stream to a logging thread of its
    # own for a moment after a chunk: wait for that thread, not for the
    # garbage collector (which stays off).
    deadline = time.monotonic() + 5
    while any(ref() is not None for ref in wrappers) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert wrappers and all(ref() is None for ref in wrappers), "LiteLLM's wrapper"
    assert not AIBudgetReservation.objects.exists()


@pytest.mark.parametrize("how", ["read", "closed", "closed midway", "dropped"])
def test_a_stream_is_freed_and_recorded_without_the_collector(
    http, no_collector, wrappers, how
):
    response = ai.get_chat_backend().chat(messages=HELLO, stream=True)
    assert AIBudgetReservation.objects.count() == 1
    ref = weakref.ref(response)
    if how == "read":
        assert response.text()
    elif how == "closed":
        response.close()
    elif how == "closed midway":
        next(iter(response))
        response.close()
    del response
    assert_released(ref, wrappers)
    record = the_record()
    assert record.streamed
    assert record.stopped_early is (how != "read")
    assert record.prompt_tokens > 0


def test_a_stream_dropped_midway_is_recorded(http, no_collector, wrappers):
    response = ai.get_chat_backend().chat(messages=HELLO, stream=True)
    ref = weakref.ref(response)
    parts = iter(response)
    next(parts)
    del response, parts
    assert_released(ref, wrappers)
    assert the_record().stopped_early


@pytest.mark.parametrize("how", ["read", "closed", "dropped"])
def test_an_async_stream_is_freed_and_recorded_without_the_collector(
    http, no_collector, wrappers, how
):
    refs = []

    async def call():
        response = await ai.get_chat_backend().achat(messages=HELLO, stream=True)
        refs.append(weakref.ref(response))
        if how == "read":
            async for _part in response:
                pass
        elif how == "closed":
            await response.aclose()
        del response
        # Let the loop run what freeing scheduled: asyncio closes a dropped
        # generator in a task of its own, and (writing in the test's thread)
        # the recording of a dropped stream is a task too.
        import asyncio

        from wagtail_vector_index.ai_utils.backends import base

        for _ in range(5):
            await asyncio.sleep(0)
        await asyncio.gather(*base._dropped_tasks)

    run_async(call)
    assert_released(refs[0], wrappers)
    record = the_record()
    assert record.streamed and record.stopped_early is (how != "read")
