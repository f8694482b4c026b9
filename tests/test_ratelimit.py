"""The test pages' per-user rate limit: a sliding window in Django's cache.

The clock is controlled (``time.time`` is patched, which Django's
``LocMemCache`` also reads for its expiry), never slept through.
"""

import threading
import time
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.test import override_settings

from wagtail_vector_index.views import ratelimit

#: Five seconds before the turn of a minute.
START = 1_800_000_000 - 1_800_000_000 % 60 + 55.0

EDITOR = SimpleNamespace(pk=1)
OTHER = SimpleNamespace(pk=2)


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture(autouse=True)
def _empty_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(START)
    monkeypatch.setattr(time, "time", clock)
    return clock


def limit(calls):
    return override_settings(WAGTAIL_VECTOR_INDEX={"TEST_PAGES_RATE_LIMIT": calls})


def run(clock, times, user=EDITOR):
    """Call ``take`` at each of ``times``; the times let through."""
    passed = []
    for moment in times:
        clock.now = moment
        if ratelimit.take(user):
            passed.append(moment)
    return passed


def most_in_any_window(passed, seconds=60):
    """The most calls of ``passed`` inside any span of ``seconds``."""
    return max(
        (sum(1 for t in passed if start <= t < start + seconds) for start in passed),
        default=0,
    )


def test_a_burst_across_the_turn_of_a_minute_gets_the_limit_only(clock):
    # The fault probe's case: 30 calls in 8.3 seconds across a minute
    # boundary, limit 20. A fixed window let all 30 through.
    times = [START + i * 8.3 / 29 for i in range(30)]
    assert int(times[0] // 60) != int(times[-1] // 60)  # It straddles the turn.
    with limit(20):
        passed = run(clock, times)
    assert passed == times[:20]


def test_no_60_second_span_ever_holds_more_than_the_limit(clock):
    # A call every quarter second for four minutes, starting before the
    # turn of a minute: the limit is reached again and again.
    times = [START - 30 + i * 0.25 for i in range(4 * 60 * 4)]
    with limit(20):
        passed = run(clock, times)
    assert most_in_any_window(passed) == 20
    # Not locked out: the limit comes back as calls leave the window.
    assert len(passed) >= 3 * 20


def test_a_slot_frees_a_window_after_the_call_that_took_it(clock):
    with limit(2):
        assert run(clock, [START, START + 10]) == [START, START + 10]
        assert run(clock, [START + 30, START + 59.9]) == []
        # The first call's slot is held for the window plus a second's margin
        # (caches that count whole seconds may expire a key a second early).
        window = ratelimit.WINDOW_SECONDS + ratelimit.MARGIN_SECONDS
        assert run(clock, [START + window - 0.1]) == []
        assert run(clock, [START + window, START + window + 1]) == [START + window]
        assert run(clock, [START + 10 + window]) == [START + 10 + window]


def test_refused_calls_take_no_slot(clock):
    with limit(1):
        assert run(clock, [START]) == [START]
        # Hammering while refused does not push the next slot further away.
        assert run(clock, [START + i for i in range(1, 61)]) == []
        assert run(clock, [START + 61]) == [START + 61]


def test_each_user_has_their_own_limit(clock):
    with limit(3):
        assert len(run(clock, [START] * 5, user=EDITOR)) == 3
        assert len(run(clock, [START] * 5, user=OTHER)) == 3


def test_zero_means_no_limit_and_nothing_is_stored(clock):
    with limit(0):
        assert len(run(clock, [START] * 100)) == 100
    assert cache.get(ratelimit.CACHE_KEY.format(user=EDITOR.pk, slot=0)) is None


def test_a_lower_limit_applies_at_once(clock):
    with limit(5):
        assert len(run(clock, [START] * 3)) == 3
    with limit(2):
        assert run(clock, [START + 1]) == []


def test_concurrent_calls_never_share_a_slot(clock):
    # 40 threads released together, each calling once: ``cache.add`` lets
    # exactly one of them take each slot.
    barrier = threading.Barrier(40)
    results = []

    def call():
        barrier.wait()
        results.append(ratelimit.take(EDITOR))

    with limit(15):
        threads = [threading.Thread(target=call) for _ in range(40)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert results.count(True) == 15
    assert results.count(False) == 25
