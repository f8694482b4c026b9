"""A per-user limit on provider calls from the admin (the test pages and
the editor features).

``WAGTAIL_VECTOR_INDEX["TEST_PAGES_RATE_LIMIT"]`` calls per user in any 60
seconds (default 20, 0 for no limit), shared by the chat and embeddings pages,
the index search and the editor features.

The window slides: each call let through holds one of ``limit`` *slots*, a
cache entry created with ``cache.add`` that expires
``WINDOW_SECONDS + MARGIN_SECONDS`` later. A call is let through only if it
creates a slot, and a slot is free again only when its entry has expired, so
whatever the calls' timing (a burst across the turn of a minute included),
no 60-second span holds more than ``limit`` of them. A fixed per-minute
counter, which this replaces, let up to twice the limit through around the
turn of each minute. Refused calls take no slot: they count against nothing.

Concurrency: ``add`` sets a key only if it is missing, and Django's cache
API offers nothing stronger. With a cache whose ``add`` is atomic (Redis,
Memcached, the database cache for a new key, ``LocMemCache`` within its
process), concurrent calls never share a slot, so the bound above holds
across threads and processes sharing the cache. It is weaker where a cache
breaks that promise: the file-based cache's ``add`` is not atomic (two
processes may take one slot), and a cache that evicts entries before their
timeout (a full ``LocMemCache`` culls entries beyond ``MAX_ENTRIES``, 300 by
default) frees slots early. With a per-process cache (the default
``LocMemCache``) each process counts on its own; configure a shared cache
(Redis, Memcached, database) for one limit across processes.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.cache import cache
from django.utils.translation import ngettext

from wagtail_vector_index import conf

CACHE_KEY = "wagtail_vector_index:test-pages-calls:{user}:{slot}"
WINDOW_SECONDS = 60
#: How much longer than the window a slot is held: Memcached counts timeouts
#: in whole seconds and may expire a key up to a second early.
MARGIN_SECONDS = 1


def _slot_keys(user: Any, limit: int) -> list[str]:
    return [CACHE_KEY.format(user=user.pk, slot=slot) for slot in range(limit)]


def take(user: Any) -> bool:
    """Let one provider call for ``user`` through (True) if fewer than the
    limit were let through in the last 60 seconds, and count it."""
    limit = conf.get_test_pages_rate_limit()
    if not limit:
        return True
    keys = _slot_keys(user, limit)
    taken = cache.get_many(keys)  # One round trip to find the free slots.
    for key in keys:
        # ``add`` fails if another call took the slot since ``get_many``:
        # then the next free one is tried. A slot that expired meanwhile is
        # not retried: the call is refused, a moment early at worst.
        if key not in taken and cache.add(
            key, time.time(), timeout=WINDOW_SECONDS + MARGIN_SECONDS
        ):
            return True
    return False


def message() -> str:
    """What an editor reads when the limit is reached."""
    limit = conf.get_test_pages_rate_limit()
    return ngettext(
        "You have reached the limit of %(limit)s call a minute to the AI "
        "providers from the Wagtail admin. Wait a minute and try again.",
        "You have reached the limit of %(limit)s calls a minute to the AI "
        "providers from the Wagtail admin. Wait a minute and try again.",
        limit,
    ) % {"limit": limit}
