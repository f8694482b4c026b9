"""``max_tokens`` from the admin: an absolute bound always, and the model's
output limit wherever LiteLLM's model map knows it (the site's AI settings
form, the chat test page's fields, its streamed call and its saving)."""

import json

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.urls import reverse
from wagtail.models import Site

from tests.utils import chat_backend_settings
from wagtail_vector_index import ai
from wagtail_vector_index.models import AISettings
from wagtail_vector_index.parameters import (
    ALL_ALIASES,
    MAX_OUTPUT_TOKENS,
    OutputLimit,
    clean_overrides,
    output_limit,
)

pytestmark = pytest.mark.django_db

#: LiteLLM's model map: gpt-3.5-turbo writes at most 4,096 tokens in one
#: answer, gpt-4o 16,384; openai/test-chat is not in the map.
SMALL = "openai/gpt-3.5-turbo"
LARGE = "openai/gpt-4o"
UNKNOWN = "openai/test-chat"

SMALL_ERROR = (
    f"Max tokens can be at most 4,096: model {SMALL} writes at most 4,096 "
    "tokens in one answer."
)
ABSOLUTE_ERROR = "Ensure this value is less than or equal to 1000000."


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def backends(provider):
    """Chat backends "small" (gpt-3.5-turbo), "large" (gpt-4o) and
    "unknown" (a model the map does not know), all on the loopback server."""
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {
                "small": chat_backend_settings(provider, model=SMALL),
                "large": chat_backend_settings(provider, model=LARGE),
                "unknown": chat_backend_settings(provider, model=UNKNOWN),
            },
        }
    ):
        yield provider


@pytest.fixture
def client(client):
    client.force_login(User.objects.create_superuser("boss", "boss@example.com"))
    return client


@pytest.fixture
def site():
    return Site.objects.get(is_default_site=True)


def sent(provider):
    return [r.body for r in provider.requests_to("/v1/chat/completions")]


# -- validation ------------------------------------------------------------------


def test_max_tokens_has_an_absolute_bound():
    assert clean_overrides("chat", {"max_tokens": MAX_OUTPUT_TOKENS}) == {
        "max_tokens": 1_000_000
    }
    with pytest.raises(ValidationError, match="Max tokens must be at most 1000000"):
        clean_overrides("chat", {"max_tokens": 10**30})
    # Stored values over the bound (written some other way) are dropped.
    assert clean_overrides("chat", {"max_tokens": 10**30}, strict=False) == {}


def test_max_tokens_bounded_by_a_models_output_limit():
    limit = OutputLimit(4096, SMALL)
    assert clean_overrides("chat", {"max_tokens": 4096}, output_limit=limit) == {
        "max_tokens": 4096
    }
    with pytest.raises(ValidationError) as error:
        clean_overrides("chat", {"max_tokens": 4097}, output_limit=limit)
    assert error.value.messages == [SMALL_ERROR]
    # A model limit above the absolute bound does not lift it.
    with pytest.raises(ValidationError, match="at most 1000000"):
        clean_overrides(
            "chat",
            {"max_tokens": 2_000_000},
            output_limit=OutputLimit(10_000_000, "big"),
        )


def test_output_limit_is_the_smallest_known(backends):
    small, large, unknown = (
        ai.get_chat_backend(alias) for alias in ("small", "large", "unknown")
    )
    assert output_limit([large]) == OutputLimit(16384, LARGE)
    assert output_limit([unknown, None, large, small]) == OutputLimit(4096, SMALL)
    assert output_limit([unknown]) is None
    assert output_limit([]) is None


# -- the site's AI settings form ------------------------------------------------------


def edit_url(site):
    return f"/admin/settings/wagtail_vector_index/aisettings/{site.pk}/"


def test_settings_form_shows_the_bounds(backends, client, site):
    html = client.get(edit_url(site)).content.decode()
    assert 'name="chat__alias-small__max_tokens"' in html
    assert 'max="4096"' in html and 'max="16384"' in html
    assert 'max="1000000"' in html  # The unknown model.
    assert f"At most 4,096, the longest answer of {SMALL}." in html
    assert (
        f"At most 4,096, the longest answer of {SMALL} (the smallest limit "
        "among the chat backends)." in html
    )


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("chat__alias-small__max_tokens", 4097, SMALL_ERROR),
        (
            "chat__alias-large__max_tokens",
            16385,
            f"Max tokens can be at most 16,384: model {LARGE} writes at most "
            "16,384 tokens in one answer.",
        ),
        ("chat__alias-unknown__max_tokens", 10**30, ABSOLUTE_ERROR),
        (
            "chat__all__max_tokens",
            5000,
            SMALL_ERROR + " This value is sent to every chat backend; set a "
            "larger one in a backend's own group.",
        ),
    ],
)
def test_settings_form_refuses_more_than_the_limit(
    backends, client, site, field, value, error
):
    response = client.post(edit_url(site), {field: str(value)})
    assert response.status_code == 200
    assert response.context["form"].errors[field] == [error]
    assert not AISettings.objects.filter(site=site).exclude(chat_overrides={}).exists()


def test_settings_form_accepts_values_within_the_limits(backends, client, site):
    response = client.post(
        edit_url(site),
        {
            "chat__all__max_tokens": "4096",
            "chat__alias-large__max_tokens": "16384",
            "chat__alias-unknown__max_tokens": "1000000",
        },
    )
    assert response.status_code == 302
    assert AISettings.objects.get(site=site).chat_overrides == {
        ALL_ALIASES: {"max_tokens": 4096},
        "large": {"max_tokens": 16384},
        "unknown": {"max_tokens": 1_000_000},
    }
    ai.get_chat_backend("large", site=site).chat(
        messages=[{"role": "user", "content": "Hi"}]
    )
    assert sent(backends)[-1]["max_tokens"] == 16384


# -- the chat test page ---------------------------------------------------------------


def chat_data(alias="small", side="a", **fields):
    data = {"site": "", "system_prompt": "", "message": "Hi", "side": side}
    data[f"{side}-alias"] = alias
    data.update({f"{side}-{name}": value for name, value in fields.items()})
    return data


def stream_lines(response):
    content = (
        b"".join(response.streaming_content) if response.streaming else response.content
    )
    return [json.loads(line) for line in content.decode().splitlines()]


def test_chat_page_field_is_bounded_by_the_chosen_model(backends, client):
    url = reverse("wagtail_vector_index:chat")
    form = client.get(url, {"a-alias": "small"}).context["sides"][0].form
    assert form.fields["max_tokens"].max_value == 4096
    assert form.fields["max_tokens"].widget.attrs["max"] == 4096
    form = client.get(url, {"a-alias": "unknown"}).context["sides"][0].form
    assert form.fields["max_tokens"].max_value == MAX_OUTPUT_TOKENS


@pytest.mark.parametrize(
    ("alias", "value", "error"),
    [
        ("small", 4097, SMALL_ERROR),
        ("unknown", 10**30, "Max tokens: " + ABSOLUTE_ERROR),
    ],
)
def test_chat_stream_refuses_more_than_the_limit(backends, client, alias, value, error):
    response = client.post(
        reverse("wagtail_vector_index:chat_stream"),
        chat_data(alias, max_tokens=str(value)),
    )
    assert response.status_code == 400
    (line,) = stream_lines(response)
    assert line["type"] == "error"
    assert error in line["message"]
    assert not sent(backends)  # Refused before any call.


def test_chat_stream_sends_a_value_at_the_limit(backends, client):
    response = client.post(
        reverse("wagtail_vector_index:chat_stream"),
        chat_data("small", max_tokens="4096"),
    )
    assert stream_lines(response)[-1]["type"] == "done"
    assert sent(backends)[-1]["max_tokens"] == 4096


def test_saving_from_the_chat_page_refuses_more_than_the_limit(backends, client, site):
    response = client.post(
        reverse("wagtail_vector_index:chat_save_overrides"),
        {**chat_data("small", max_tokens="5000"), "site": site.pk},
    )
    assert response.status_code == 200
    assert response.context["sides"][0].form.errors["max_tokens"] == [SMALL_ERROR]
    assert AISettings.for_site(site).overrides("chat") == {}


def test_a_settings_value_over_the_limit_is_sent_but_not_prefilled(provider, client):
    # Django settings are the developer's business (manage.py check warns,
    # W004): the value is used, but the field cannot take it.
    small = chat_backend_settings(
        provider, model=SMALL, DEFAULT_PARAMETERS={"max_tokens": 8000}
    )
    with override_settings(WAGTAIL_VECTOR_INDEX={"CHAT_BACKENDS": {"small": small}}):
        page = client.get(reverse("wagtail_vector_index:chat"))
        field = page.context["sides"][0].form["max_tokens"]
        assert field.initial is None
        assert "cannot be entered here" in field.help_text
        response = client.post(
            reverse("wagtail_vector_index:chat_stream"), chat_data("small")
        )
        assert stream_lines(response)[-1]["type"] == "done"
    assert sent(provider)[-1]["max_tokens"] == 8000
