"""Per-site parameter overrides: merge order, two sites, caching, the admin
form and the allow-list."""

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from wagtail.models import Page, Site

from tests.utils import chat_backend_settings, embedding_backend_settings
from wagtail_vector_index import ai
from wagtail_vector_index.models import AISettings
from wagtail_vector_index.parameters import ALL_ALIASES, clean_overrides

MESSAGES = [{"role": "user", "content": "Hello"}]

pytestmark = pytest.mark.django_db


@pytest.fixture
def sites():
    root = Page.get_first_root_node()
    home_a = root.add_child(instance=Page(title="Site A home", slug="a-home"))
    home_b = root.add_child(instance=Page(title="Site B home", slug="b-home"))
    Site.objects.all().delete()
    site_a = Site.objects.create(
        hostname="a.example", port=80, root_page=home_a, is_default_site=True
    )
    site_b = Site.objects.create(hostname="b.example", port=80, root_page=home_b)
    return site_a, site_b


@pytest.fixture
def backends(provider):
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {
                "default": chat_backend_settings(
                    provider, DEFAULT_PARAMETERS={"temperature": 0.1, "max_tokens": 50}
                ),
                "writer": chat_backend_settings(provider),
            },
            "EMBEDDING_BACKENDS": {"default": embedding_backend_settings(provider)},
        }
    ):
        yield provider


def set_overrides(site, kind="chat", **scopes):
    settings = AISettings.for_site(site)
    for scope, values in scopes.items():
        settings.set_overrides(kind, ALL_ALIASES if scope == "all" else scope, values)
    settings.save()
    return settings


def sent(provider):
    return [r.body for r in provider.requests_to("/v1/chat/completions")]


def test_each_site_sends_its_own_temperature(backends, sites, rf):
    site_a, site_b = sites
    set_overrides(site_a, all={"temperature": 0.7})
    set_overrides(site_b, all={"temperature": 1.3})

    ai.get_chat_backend(site=site_a).chat(messages=MESSAGES)
    ai.get_chat_backend(request=rf.get("/", HTTP_HOST="b.example")).chat(
        messages=MESSAGES
    )
    ai.get_chat_backend(request=rf.get("/", HTTP_HOST="a.example")).chat(
        messages=MESSAGES
    )
    ai.get_chat_backend().chat(messages=MESSAGES)  # No site: settings only.

    assert [body["temperature"] for body in sent(backends)] == [0.7, 1.3, 0.7, 0.1]
    # What the site does not override comes from settings.
    assert {body["max_tokens"] for body in sent(backends)} == {50}


def test_merge_order_and_sources(backends, sites):
    site_a, _ = sites
    set_overrides(
        site_a, all={"temperature": 0.5, "top_p": 0.9}, default={"temperature": 0.9}
    )

    backend = ai.get_chat_backend(site=site_a)
    backend.chat(messages=MESSAGES, top_p=0.2)
    writer = ai.get_chat_backend("writer", site=site_a)

    (body,) = sent(backends)
    assert body["temperature"] == 0.9  # This alias beats all aliases.
    assert body["top_p"] == 0.2  # The call beats the site.
    assert body["max_tokens"] == 50  # Settings, untouched.
    effective = backend.effective_parameters({"top_p": 0.2})
    assert {
        n: (p.value, p.source)
        for n, p in effective.items()
        if n in ("temperature", "top_p", "max_tokens")
    } == {
        "temperature": (0.9, "site-alias"),
        "top_p": (0.2, "call"),
        "max_tokens": (50, "settings"),
    }
    assert effective["temperature"].source_label == "Site settings, this backend"
    assert writer.config.default_parameters["temperature"] == 0.5
    assert writer.effective_parameters()["temperature"].source == "site"


def test_saving_the_setting_changes_the_next_call(backends, sites):
    site_a, _ = sites
    settings = set_overrides(site_a, all={"temperature": 0.3})
    ai.get_chat_backend(site=site_a).chat(messages=MESSAGES)

    settings.set_overrides("chat", ALL_ALIASES, {"temperature": 1.1})
    settings.save()
    ai.get_chat_backend(site=site_a).chat(messages=MESSAGES)

    assert [body["temperature"] for body in sent(backends)] == [0.3, 1.1]


def test_site_settings_are_read_once_per_request(
    backends, sites, rf, django_assert_num_queries
):
    site_a, _ = sites
    set_overrides(site_a, all={"temperature": 0.3})
    from django.core.cache import cache

    cache.clear()
    request = rf.get("/", HTTP_HOST="a.example")
    Site.find_for_request(request)  # Wagtail caches the site on the request.
    with django_assert_num_queries(1):
        for _ in range(3):
            ai.get_chat_backend(request=request)
            ai.get_embedding_backend(request=request)
    # Cached across requests too.
    with django_assert_num_queries(0):
        ai.get_chat_backend(site=site_a)


def temperature_for(site):
    return ai.get_chat_backend(site=site).effective_parameters()["temperature"].value


def change_elsewhere(site, temperature):
    """Change the stored setting without this process's save signal, as
    another server process does (its save clears only its own LocMemCache)."""
    AISettings.objects.filter(site=site).update(
        chat_overrides={ALL_ALIASES: {"temperature": temperature}}
    )


@pytest.fixture
def clock(monkeypatch):
    """``time.time``, which LocMemCache's expiry reads, under the test's control."""
    now = [1_800_000_000.0]
    monkeypatch.setattr("time.time", lambda: now[0])
    return now


@pytest.mark.parametrize("timeout", [None, 5, 300])
def test_site_settings_cache_timeout_is_the_one_in_force(
    backends, sites, clock, timeout
):
    from django.conf import settings

    from wagtail_vector_index.site_overrides import get_site_overrides

    setting = dict(settings.WAGTAIL_VECTOR_INDEX)
    if timeout is not None:
        setting["SITE_SETTINGS_CACHE_TIMEOUT"] = timeout
    expected = 60 if timeout is None else timeout  # None: the default.
    site_a, _ = sites
    set_overrides(site_a, all={"temperature": 0.3})
    with override_settings(WAGTAIL_VECTOR_INDEX=setting):
        start = clock[0]
        assert temperature_for(site_a) == 0.3  # Read and cached now.
        change_elsewhere(site_a, 1.1)
        clock[0] = start + expected - 0.5
        assert temperature_for(site_a) == 0.3  # Still the cached value...
        clock[0] = start + expected
        assert temperature_for(site_a) == 1.1  # ...until the timeout in force.
        assert get_site_overrides(site_a.pk)["chat"] == {
            ALL_ALIASES: {"temperature": 1.1}
        }


def test_site_settings_cache_timeout_zero_reads_every_time(
    backends, sites, django_assert_num_queries
):
    from django.conf import settings
    from django.core.cache import cache

    from wagtail_vector_index.site_overrides import CACHE_KEY

    site_a, _ = sites
    set_overrides(site_a, all={"temperature": 0.3})
    # An entry written by a process with another timeout is not used either.
    cache.set(CACHE_KEY.format(site_a.pk), {"chat": {}, "embedding": {}})
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            **settings.WAGTAIL_VECTOR_INDEX,
            "SITE_SETTINGS_CACHE_TIMEOUT": 0,
        }
    ):
        assert temperature_for(site_a) == 0.3
        change_elsewhere(site_a, 1.1)
        assert temperature_for(site_a) == 1.1  # At once.
        with django_assert_num_queries(1):
            ai.get_chat_backend(site=site_a)
        cache.delete(CACHE_KEY.format(site_a.pk))
        temperature_for(site_a)
        assert cache.get(CACHE_KEY.format(site_a.pk)) is None  # Nothing stored.


def test_overrides_for_a_removed_alias_are_ignored(backends, sites):
    site_a, _ = sites
    set_overrides(site_a, gone={"temperature": 1.9})

    ai.get_chat_backend(site=site_a).chat(messages=MESSAGES)

    assert sent(backends)[0]["temperature"] == 0.1


def test_unsupported_site_parameter_is_not_sent(sites, provider):
    # LiteLLM knows o1 does not accept temperature or top_p: a site override
    # for all chat backends must not make its calls fail.
    o1 = chat_backend_settings(provider, model="openai/o1")
    with override_settings(WAGTAIL_VECTOR_INDEX={"CHAT_BACKENDS": {"default": o1}}):
        site_a, _ = sites
        set_overrides(site_a, all={"top_p": 0.5, "seed": 3})
        ai.get_chat_backend(site=site_a).chat(messages=MESSAGES)

    (body,) = sent(provider)
    assert "top_p" not in body
    assert body["seed"] == 3


def test_only_allow_listed_parameters_are_stored(sites):
    site_a, _ = sites
    settings = AISettings.for_site(site_a)
    settings.chat_overrides = {
        ALL_ALIASES: {"temperature": 0.5, "api_key": "sk-stolen", "api_base": "x"},
        "default": {"base_url": "http://evil.example", "extra_headers": {"a": "b"}},
    }
    settings.embedding_overrides = {ALL_ALIASES: {"api_base": "http://evil.example"}}
    settings.save()

    settings.refresh_from_db()
    assert settings.chat_overrides == {ALL_ALIASES: {"temperature": 0.5}}
    assert settings.embedding_overrides == {}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"temperature": 2.5}, "at most 2"),
        ({"temperature": -1}, "at least 0"),
        ({"max_tokens": 0}, "at least 1"),
        ({"top_p": 1.5}, "at most 1"),
        ({"presence_penalty": -3}, "at least -2"),
        ({"seed": 1.5}, "whole number"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "At most 4"),
        ({"api_key": "x"}, "cannot be set from the admin"),
        ({"temperature": "hot"}, "must be a number"),
    ],
)
def test_override_validation(values, message):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match=message):
        clean_overrides("chat", values)


# -- the settings form in the admin -----------------------------------------------


@pytest.fixture
def admin_client_for(client):
    user = User.objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(user)
    return client


def edit_url(site):
    return f"/admin/settings/wagtail_vector_index/aisettings/{site.pk}/"


def test_settings_form_shows_typed_fields_per_alias(backends, sites, admin_client_for):
    site_a, _ = sites
    set_overrides(site_a, gone={"temperature": 1.9}, all={"temperature": 0.6})

    response = admin_client_for.get(edit_url(site_a))

    assert response.status_code == 200
    html = response.content.decode()
    assert "All chat backends" in html
    assert "Chat backend “default”" in html
    assert "Chat backend “writer”" in html
    # Each field once: Wagtail must not render the generated fields again as
    # "missing" fields (the second, empty copy would win on submit).
    assert html.count('name="chat__all__temperature"') == 1
    assert 'name="chat__alias-writer__max_tokens"' in html
    assert 'value="0.6"' in html
    # The removed alias is shown, flagged, read-only.
    assert "Chat backend “gone”" in html
    assert "no longer in WAGTAIL_VECTOR_INDEX" in html
    assert 'name="chat__alias-gone__temperature"' in html
    assert "api_key" not in html


def test_settings_form_saves_and_ignores_forged_fields(
    backends, sites, admin_client_for
):
    site_a, site_b = sites
    response = admin_client_for.post(
        edit_url(site_a),
        {
            "chat__all__temperature": "0.8",
            "chat__alias-writer__max_tokens": "99",
            "chat__alias-writer__stop": "END\nSTOP",
            "embedding__all__timeout": "30",
            "chat__all__api_key": "sk-forged",
            "chat__all__api_base": "http://evil.example",
            "api_key": "sk-forged",
            "chat_overrides": '{"*": {"api_base": "http://evil.example"}}',
        },
    )

    assert response.status_code == 302
    settings = AISettings.objects.get(site=site_a)
    assert settings.chat_overrides == {
        ALL_ALIASES: {"temperature": 0.8},
        "writer": {"max_tokens": 99, "stop": ["END", "STOP"]},
    }
    assert settings.embedding_overrides == {ALL_ALIASES: {"timeout": 30.0}}
    assert (
        not AISettings.objects.filter(site=site_b).exclude(chat_overrides={}).exists()
    )
    ai.get_chat_backend("writer", site=site_a).chat(messages=MESSAGES)
    (body,) = sent(backends)
    assert body["temperature"] == 0.8 and body["max_tokens"] == 99
    assert "api_key" not in body
    assert backends.requests_to("/v1/chat/completions")  # Still the loopback server.


def test_settings_form_rejects_out_of_range_values(backends, sites, admin_client_for):
    site_a, _ = sites
    response = admin_client_for.post(edit_url(site_a), {"chat__all__temperature": "5"})
    assert response.status_code == 200
    assert "Ensure this value is less than or equal to 2" in response.content.decode()
    assert AISettings.objects.get(site=site_a).chat_overrides == {}


def test_settings_form_keeps_overrides_of_a_removed_alias(
    backends, sites, admin_client_for
):
    site_a, _ = sites
    set_overrides(site_a, gone={"temperature": 1.9})
    response = admin_client_for.post(
        edit_url(site_a), {"chat__alias-gone__temperature": "0.1"}
    )
    assert response.status_code == 302
    assert AISettings.objects.get(site=site_a).chat_overrides == {
        "gone": {"temperature": 1.9}
    }


def test_settings_form_warns_about_unsupported_parameters(
    sites, provider, admin_client_for
):
    o1 = chat_backend_settings(provider, model="openai/o1")
    with override_settings(WAGTAIL_VECTOR_INDEX={"CHAT_BACKENDS": {"default": o1}}):
        site_a, _ = sites
        html = admin_client_for.get(edit_url(site_a)).content.decode()
    assert "Warning: openai/o1 does not support top p" in html
    assert "Warning: openai/o1 does not support seed" not in html
