"""Fixtures of the production suite (tests/settings_production.py)."""

import pytest
from django.test import override_settings

from tests.utils import chat_backend_settings
from wagtail_vector_index import usage


@pytest.fixture
def site(transactional_db):
    """The site a request to testserver is for: a transactional test's
    flush takes Wagtail's root page and site away after each test."""
    from django.contrib.contenttypes.models import ContentType
    from wagtail.models import Locale, Page, Site

    ContentType.objects.clear_cache()
    site = Site.objects.filter(is_default_site=True).first()
    if site is not None:  # As migrations left it, before the first flush.
        return site
    Locale.objects.get_or_create(language_code="en")
    root = Page.get_first_root_node() or Page.add_root(
        instance=Page(title="Root", slug="root")
    )
    home = root.add_child(instance=Page(title="Home", slug="home"))
    return Site.objects.create(
        hostname="localhost", port=80, root_page=home, is_default_site=True
    )


@pytest.fixture
def settings_for(provider):
    """``WAGTAIL_VECTOR_INDEX`` with the loopback provider and ``USAGE``."""

    def make(**usage_settings):
        return {
            "CHAT_BACKENDS": {"default": chat_backend_settings(provider)},
            "USAGE": usage_settings,
        }

    return make


@pytest.fixture(autouse=True)
def _writer_thread():
    """The ledger's writer thread is on, as in production (tests/conftest.py
    writes what it queued after each test)."""
    assert usage.writes_in_background()


@pytest.fixture
def budget(settings_for, site):
    """A monthly token budget for the site, in calls of the views' size."""

    def make(tokens):
        return override_settings(
            WAGTAIL_VECTOR_INDEX=settings_for(MONTHLY_BUDGET_TOKENS=tokens)
        )

    return make
