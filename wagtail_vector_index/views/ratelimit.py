"""A per-user limit on provider calls from the admin test pages.

A fixed one-minute window counted in Django's cache, shared by the chat and
embeddings pages: ``WAGTAIL_VECTOR_INDEX["TEST_PAGES_RATE_LIMIT"]`` calls per
user per minute (default 20, 0 for no limit). With a per-process cache (the
default ``LocMemCache``) each process counts on its own; configure a shared
cache (Redis, Memcached, database) for a limit across processes.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache

from wagtail_vector_index import conf

CACHE_KEY = "wagtail_vector_index:test-pages-calls:{user}:{window}"
WINDOW_SECONDS = 60


def _key(user: Any, window: int) -> str:
    return CACHE_KEY.format(user=user.pk, window=window)


def take(user: Any) -> bool:
    """Count one provider call for ``user``; False if over the limit.

    A refused call is counted too, so that hammering the endpoint does not
    get through as soon as a slot frees up within the same window.
    """
    limit = conf.get_test_pages_rate_limit()
    if not limit:
        return True
    key = _key(user, int(time.time() // WINDOW_SECONDS))
    # ``add`` only sets a missing key, so concurrent first calls do not reset
    # each other's count; the timeout outlives the window it counts.
    cache.add(key, 0, timeout=WINDOW_SECONDS * 2)
    try:
        count = cache.incr(key)
    except ValueError:  # Evicted between add and incr.
        cache.set(key, 1, timeout=WINDOW_SECONDS * 2)
        count = 1
    return count <= limit


def message() -> str:
    """What an editor reads when the limit is reached."""
    limit = conf.get_test_pages_rate_limit()
    calls = "call" if limit == 1 else "calls"
    return (
        f"You have reached the limit of {limit} {calls} a minute to the AI "
        "providers from the test pages. Wait a minute and try again."
    )
