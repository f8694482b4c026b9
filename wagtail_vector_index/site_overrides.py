"""Reading a site's parameter overrides, with their cache and its invalidation.

The overrides are edited in the admin (Settings › AI settings, the
``AISettings`` model) and read by :mod:`wagtail_vector_index.ai` whenever a
backend is asked for with a site. This module sits between the backends and
``ai`` in the package's layers: it looks the model up through Django's app
registry at call time and never imports ``models.py`` (which lies above it).

A site's overrides are cached in Django's cache for
``WAGTAIL_VECTOR_INDEX["SITE_SETTINGS_CACHE_TIMEOUT"]`` seconds (default 60,
see :func:`conf.get_site_settings_cache_timeout`). Saving or deleting the
setting clears the entry; the timeout bounds how long other processes with a
per-process cache (the default ``LocMemCache``) may go on with old values.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.cache import cache
from django.db.models.signals import post_delete, post_save

from wagtail_vector_index import conf
from wagtail_vector_index.parameters import clean_stored_overrides

CACHE_KEY = "wagtail_vector_index:site-overrides:{}"
#: The model holding the overrides, by its label (see the module docstring).
MODEL = "wagtail_vector_index.AISettings"

SiteOverrides = dict[str, dict[str, dict[str, Any]]]


def read_site_overrides(site_id: int) -> SiteOverrides:
    """``{"chat": {scope: {...}}, "embedding": {...}}`` from the database,
    cleaned (only allow-listed, valid values survive)."""
    instance = apps.get_model(MODEL).objects.filter(site_id=site_id).first()
    return {
        conf.CHAT: clean_stored_overrides(
            conf.CHAT, instance.chat_overrides if instance else {}
        ),
        conf.EMBEDDING: clean_stored_overrides(
            conf.EMBEDDING, instance.embedding_overrides if instance else {}
        ),
    }


def get_site_overrides(site_id: int) -> SiteOverrides:
    """A site's overrides, cached for ``SITE_SETTINGS_CACHE_TIMEOUT`` seconds
    (0: read every time)."""
    timeout = conf.get_site_settings_cache_timeout()
    key = CACHE_KEY.format(site_id)
    # With 0 the cache is not read either: an entry another process wrote
    # under a different timeout must not be used.
    overrides = cache.get(key) if timeout else None
    if overrides is None:
        overrides = read_site_overrides(site_id)
        if timeout:
            cache.set(key, overrides, timeout)
    return overrides


def forget_site_overrides(site_id: int) -> None:
    """Drop a site's cached overrides (the next read goes to the database)."""
    cache.delete(CACHE_KEY.format(site_id))


def _on_change(sender: Any, instance: Any, **kwargs: Any) -> None:
    forget_site_overrides(instance.site_id)


# Connected by the model's label: Django resolves it once the app is loaded,
# so this module needs no import of models.py.
post_save.connect(_on_change, sender=MODEL, dispatch_uid="wvi-site-overrides-save")
post_delete.connect(_on_change, sender=MODEL, dispatch_uid="wvi-site-overrides-delete")
