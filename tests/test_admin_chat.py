"""The chat test page: prefilled parameters, streaming, compare mode, ASGI,
saving as site overrides, and its security properties (POST only, CSRF,
allow-list, escaping, safe error messages)."""

import json

import pytest
from django.test import AsyncClient, override_settings
from django.urls import reverse
from wagtail.models import ModelLogEntry, Page, Site

from tests.utils import (
    CHAT_URL,
    EMBEDDINGS_URL,
    PLAIN_KEY,
    SAVE_URL,
    STREAM_URL,
    TEST_API_KEY,
    chat_backend_settings,
    chat_data,
    chat_requests,
    closed_port,
    lines,
    logged_in,
    run_async,
)
from wagtail_vector_index.ai_utils.types import AIStreamingResponse
from wagtail_vector_index.models import AISettings
from wagtail_vector_index.parameters import ALL_ALIASES

pytestmark = pytest.mark.django_db

# -- the chat page -----------------------------------------------------------


def test_chat_page_prefills_effective_parameters_with_their_source(backends, editor):
    response = logged_in(editor).get(reverse(CHAT_URL))
    assert response.status_code == 200
    html = response.content.decode()
    assert "wagtailadmin/generic" not in html  # Rendered, not a raw include.
    form = response.context["sides"][0].form
    assert form["temperature"].initial == 0.4
    assert "Django settings (DEFAULT_PARAMETERS)" in form["temperature"].help_text
    assert "Not set" in form["max_tokens"].help_text
    # Aliases are labelled with their model; offline backends say so.
    assert "default: openai/test-chat" in html
    assert "offline: echo (offline)" in html
    assert "wagtail_vector_index/js/chat-controller.js" in html
    assert 'data-controller="wvi-chat"' in html
    # The default site is the request's site.
    site = Site.objects.get(is_default_site=True)
    assert response.context["request_form"]["site"].initial == site


def test_chat_page_follows_the_chosen_site_and_alias(backends, editor):
    site = Site.objects.get(is_default_site=True)
    settings = AISettings.for_site(site)
    settings.set_overrides("chat", "writer", {"temperature": 1.2})
    settings.save()
    response = logged_in(editor).get(
        reverse(CHAT_URL), {"site": site.pk, "a-alias": "writer"}
    )
    form = response.context["sides"][0].form
    assert form["alias"].value() == "writer"
    assert form["temperature"].initial == 1.2
    assert "Site settings, this backend" in form["temperature"].help_text
    # "No site": settings only.
    response = logged_in(editor).get(
        reverse(CHAT_URL), {"site": "", "a-alias": "writer"}
    )
    assert response.context["sides"][0].form["temperature"].initial is None


def test_values_the_admin_cannot_set_are_not_prefilled(provider, editor):
    chat = chat_backend_settings(provider, DEFAULT_PARAMETERS={"timeout": 0.5})
    with override_settings(WAGTAIL_VECTOR_INDEX={"CHAT_BACKENDS": {"default": chat}}):
        response = logged_in(editor).get(reverse(CHAT_URL))
    field = response.context["sides"][0].form["timeout"]
    assert field.initial is None  # 0.5 is below the field's minimum of 1.
    assert "leave the field empty to keep it" in field.help_text


def test_chat_page_escapes_prompts_from_the_url(backends, editor):
    html = (
        logged_in(editor)
        .get(reverse(CHAT_URL), {"message": "<script>alert(1)</script>"})
        .content.decode()
    )
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_stream_answers_in_parts_then_done(backends, editor):
    response = logged_in(editor).post(reverse(STREAM_URL), chat_data())
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    received = lines(response)
    parts = [line for line in received if line["type"] == "part"]
    assert "".join(p["content"] for p in parts) == backends.state.reply
    assert [p["index"] for p in parts] == [0] * len(parts)
    done = received[-1]
    assert done["type"] == "done"
    assert [line["type"] for line in received[:-1]] == ["part"] * len(parts)
    assert done["usage"]["completion_tokens"] == len(backends.state.reply.split())
    assert done["usage"]["total_tokens"] > done["usage"]["completion_tokens"]
    assert done["total_time"] >= done["time_to_first_token"] > 0
    assert done["model"] == "openai/test-chat"
    assert "cost" in done
    # Only allow-listed parameters are reported (settings hold api_base).
    assert done["parameters"]["temperature"]["value"] == 0.4
    assert set(done["parameters"]) <= {"temperature", "timeout"}
    (request,) = chat_requests(backends)
    assert request.body["temperature"] == 0.4
    assert request.body["messages"] == [{"role": "user", "content": "Hello there"}]
    assert request.body["stream"] is True


def test_stream_sends_changed_parameters_and_the_system_prompt(backends, editor):
    data = chat_data(temperature="0.9", max_tokens="20", stop="END\nSTOP")
    data["system_prompt"] = "Answer briefly."
    response = logged_in(editor).post(reverse(STREAM_URL), data)
    assert lines(response)[-1]["type"] == "done"
    (request,) = chat_requests(backends)
    assert request.body["temperature"] == 0.9
    assert request.body["max_tokens"] == 20
    assert request.body["stop"] == ["END", "STOP"]
    assert request.body["messages"][0] == {
        "role": "system",
        "content": "Answer briefly.",
    }


def test_stream_uses_the_sites_overrides(backends, editor):
    site = Site.objects.get(is_default_site=True)
    settings = AISettings.for_site(site)
    settings.set_overrides("chat", ALL_ALIASES, {"temperature": 1.5})
    settings.save()
    client = logged_in(editor)
    lines(client.post(reverse(STREAM_URL), chat_data(site=site)))
    lines(client.post(reverse(STREAM_URL), chat_data()))  # No site.
    assert [r.body["temperature"] for r in chat_requests(backends)] == [1.5, 0.4]


def test_forged_fields_never_reach_the_provider(backends, editor):
    data = chat_data()
    forged = {
        "api_key": "sk-forged",
        "api_base": "http://attacker.invalid/v1",
        "base_url": "http://attacker.invalid/v1",
        "extra_headers": '{"X-Evil": "1"}',
        "headers": '{"X-Evil": "1"}',
        "model": "openai/other",
        "stream": "false",
    }
    for name, value in forged.items():
        data[name] = value
        data[f"a-{name}"] = value
    received = lines(logged_in(editor).post(reverse(STREAM_URL), data))
    assert received[-1]["type"] == "done"
    (request,) = chat_requests(backends)  # Still the loopback server.
    assert request.headers["authorization"] == f"Bearer {TEST_API_KEY}"
    assert "x-evil" not in request.headers
    assert request.body["model"] == "test-chat"
    for name in ("api_key", "api_base", "base_url", "extra_headers", "headers"):
        assert name not in request.body
    assert "sk-forged" not in json.dumps(request.body)


def test_invalid_values_are_refused_before_any_call(backends, editor):
    response = logged_in(editor).post(
        reverse(STREAM_URL), chat_data(temperature="7", message="")
    )
    assert response.status_code == 400
    (line,) = lines(response)
    assert line["type"] == "error"
    assert "Temperature" in line["message"] and "Message" in line["message"]
    response = logged_in(editor).post(
        reverse(STREAM_URL), {**chat_data(), "a-alias": "unknown"}
    )
    assert response.status_code == 400
    assert not chat_requests(backends)


def test_csrf_is_enforced(backends, editor):
    client = logged_in(editor, enforce_csrf_checks=True)
    assert client.post(reverse(STREAM_URL), chat_data()).status_code == 403
    assert client.post(reverse(SAVE_URL), chat_data()).status_code == 403
    assert client.post(reverse(EMBEDDINGS_URL), {"texts": "a"}).status_code == 403
    assert not chat_requests(backends)
    # With the token from the page's form, the same request goes through.
    page = client.get(reverse(CHAT_URL))
    token = page.context["csrf_token"]
    response = client.post(
        reverse(STREAM_URL), {**chat_data(), "csrfmiddlewaretoken": str(token)}
    )
    assert response.status_code == 200
    assert lines(response)[-1]["type"] == "done"


def test_model_output_is_json_data_never_markup(backends, editor):
    backends.state.reply = "<script>alert(1)</script> & <b>bold</b>"
    response = logged_in(editor).post(reverse(STREAM_URL), chat_data())
    raw = b"".join(response.streaming_content)
    assert b"<script>" not in raw and b"<b>" not in raw
    received = [json.loads(line) for line in raw.decode().splitlines()]
    answer = "".join(line["content"] for line in received if line["type"] == "part")
    assert answer == "<script>alert(1)</script> & <b>bold</b>"


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        ("401", "rejected the credentials"),
        ("429", "rate limiting"),
        ("500", "internal error"),
        ("slow", "did not answer in time"),
        ("unreachable", "could not be reached"),
    ],
)
def test_provider_failures_are_an_error_line(provider, editor, failure, expected):
    provider.state.slow_seconds = 1.0
    parameters = {"timeout": 0.3}
    if failure == "unreachable":
        parameters["api_base"] = f"http://127.0.0.1:{closed_port()}/v1"
    else:
        provider.fail(failure, times=3)
    chat = chat_backend_settings(provider, DEFAULT_PARAMETERS=parameters)
    with override_settings(WAGTAIL_VECTOR_INDEX={"CHAT_BACKENDS": {"default": chat}}):
        response = logged_in(editor).post(reverse(STREAM_URL), chat_data())
        raw = b"".join(response.streaming_content).decode()
    (line,) = [json.loads(text) for text in raw.splitlines()]
    assert line["type"] == "error"
    assert expected in line["message"]
    assert '"default"' in line["message"] and "openai/test-chat" in line["message"]
    assert TEST_API_KEY not in raw and "sk-" not in raw
    assert "Traceback" not in raw


def test_a_misconfigured_backend_is_an_error_line(provider, editor):
    broken = {"CLASS": "nowhere.Backend", "CONFIG": {"MODEL_ID": "x"}}
    with override_settings(WAGTAIL_VECTOR_INDEX={"CHAT_BACKENDS": {"default": broken}}):
        client = logged_in(editor)
        page = client.get(reverse(CHAT_URL)).content.decode()
        assert "cannot be used" in page
        response = client.post(reverse(STREAM_URL), chat_data())
    (line,) = lines(response)
    assert line["type"] == "error" and "cannot be imported" in line["message"]


def test_compare_mode_streams_two_answers(backends, editor):
    client = logged_in(editor)
    data = {
        **chat_data(temperature="0.2"),
        "compare": "on",
        "b-alias": "writer",
        "b-temperature": "1.7",
    }
    answer_a = lines(client.post(reverse(STREAM_URL), {**data, "side": "a"}))
    answer_b = lines(client.post(reverse(STREAM_URL), {**data, "side": "b"}))
    assert answer_a[-1]["model"] == "openai/test-chat"
    assert answer_b[-1]["model"] == "openai/test-writer"
    sent = {r.body["model"]: r.body["temperature"] for r in chat_requests(backends)}
    assert sent == {"test-chat": 0.2, "test-writer": 1.7}
    page = client.get(reverse(CHAT_URL), {"compare": "1"})
    assert page.context["compare"] is True
    assert page.context["sides"][1].form["alias"].value() == "writer"


def test_the_offline_backend_streams_without_a_provider(backends, editor):
    data = {**chat_data(), "a-alias": "offline"}
    received = lines(logged_in(editor).post(reverse(STREAM_URL), data))
    answer = "".join(line["content"] for line in received if line["type"] == "part")
    assert "You said: Hello there" in answer
    assert received[-1]["offline"] is True
    assert received[-1]["backend"] == "offline: echo (offline)"
    assert not chat_requests(backends)


def test_closing_the_response_closes_the_provider_stream(backends, editor, monkeypatch):
    closed = []
    original = AIStreamingResponse.close

    def close(self):
        closed.append(self)
        original(self)

    monkeypatch.setattr(AIStreamingResponse, "close", close)
    response = logged_in(editor).post(reverse(STREAM_URL), chat_data())
    stream = iter(response.streaming_content)
    first = json.loads(next(stream))
    assert first["type"] == "part"
    assert not closed
    response.close()  # What the server does when the browser goes away.
    assert len(closed) == 1 and closed[0].closed
    assert next(stream, None) is None


def test_stream_under_asgi(backends, editor):
    async def post():
        client = AsyncClient()
        await client.aforce_login(editor)
        response = await client.post(reverse(STREAM_URL), chat_data(temperature="0.7"))
        assert response.status_code == 200
        assert response.is_async  # An async generator, read with async for.
        return b"".join([chunk async for chunk in response.streaming_content])

    raw = run_async(post)
    received = [json.loads(line) for line in raw.decode().splitlines()]
    answer = "".join(line["content"] for line in received if line["type"] == "part")
    assert answer == backends.state.reply
    assert received[-1]["type"] == "done"
    assert received[-1]["usage"]["total_tokens"]
    assert chat_requests(backends)[0].body["temperature"] == 0.7


def test_provider_failure_under_asgi(backends, editor):
    backends.fail("401", times=3)

    async def post():
        client = AsyncClient()
        await client.aforce_login(editor)
        response = await client.post(reverse(STREAM_URL), chat_data())
        return b"".join([chunk async for chunk in response.streaming_content])

    raw = run_async(post).decode()
    (line,) = [json.loads(text) for text in raw.splitlines()]
    assert line["type"] == "error" and "credentials" in line["message"]
    assert TEST_API_KEY not in raw


# -- saving as site overrides ------------------------------------------------------


@pytest.fixture
def two_sites():
    default = Site.objects.get(is_default_site=True)
    root = Page.get_first_root_node()
    home = root.add_child(instance=Page(title="Other home", slug="other-home"))
    other = Site.objects.create(hostname="other.example", port=80, root_page=home)
    return default, other


def test_save_as_site_overrides(backends, settings_editor, two_sites):
    site, other = two_sites
    settings = AISettings.for_site(site)
    settings.set_overrides("chat", "default", {"top_p": 0.5, "seed": 3})
    settings.save()
    data = chat_data(
        site=site,
        side="a",
        message="",
        temperature="0.9",  # Changed: stored.
        top_p="0.5",  # Kept as it was: stays.
        seed="",  # Emptied: removed.
        timeout="2",  # Equal to the settings' value: not stored.
    )
    data["a-alias"] = "default"
    data["api_key"] = data["a-api_key"] = "sk-forged"
    client = logged_in(settings_editor)
    response = client.post(reverse(SAVE_URL), data)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse(CHAT_URL))
    assert f"site={site.pk}" in response["Location"]

    stored = AISettings.for_site(site)
    assert stored.overrides("chat") == {"default": {"temperature": 0.9, "top_p": 0.5}}
    assert stored.chat_overrides == {"default": {"temperature": 0.9, "top_p": 0.5}}
    assert AISettings.for_site(other).overrides("chat") == {}
    entry = ModelLogEntry.objects.get(action="wagtail.edit")
    assert entry.user_id == settings_editor.pk
    assert entry.object_id == str(stored.pk)
    assert entry.content_type.model_class() is AISettings

    # The page now shows the saved value and where it comes from.
    page = client.get(response["Location"])
    field = page.context["sides"][0].form["temperature"]
    assert field.initial == 0.9
    assert "Site settings, this backend" in field.help_text
    messages = [str(m) for m in page.context["messages"]]
    assert any("temperature = 0.9" in m for m in messages)


def test_save_side_b_in_compare_mode(backends, settings_editor):
    site = Site.objects.get(is_default_site=True)
    data = {
        **chat_data(site=site, temperature="0.1"),
        "compare": "on",
        "side": "b",
        "b-alias": "writer",
        "b-max_tokens": "99",
    }
    response = logged_in(settings_editor).post(reverse(SAVE_URL), data)
    assert response.status_code == 302
    assert AISettings.for_site(site).overrides("chat") == {"writer": {"max_tokens": 99}}


def test_save_needs_the_permission_to_change_the_setting(backends, editor):
    site = Site.objects.get(is_default_site=True)
    client = logged_in(editor)
    page = client.get(reverse(CHAT_URL)).content.decode()
    assert reverse(SAVE_URL) not in page  # No button.
    response = client.post(reverse(SAVE_URL), chat_data(site=site, temperature="1"))
    assert response.status_code == 403
    assert AISettings.for_site(site).overrides("chat") == {}
    assert not ModelLogEntry.objects.filter(action="wagtail.edit").exists()


def test_save_needs_a_site_and_valid_values(backends, settings_editor):
    client = logged_in(settings_editor)
    response = client.post(reverse(SAVE_URL), chat_data(site=None, temperature="1"))
    assert response.status_code == 200
    assert "Choose the site" in response.content.decode()
    site = Site.objects.get(is_default_site=True)
    response = client.post(reverse(SAVE_URL), chat_data(site=site, temperature="9"))
    assert response.status_code == 200
    assert response.context["sides"][0].form.errors["temperature"]
    assert AISettings.for_site(site).overrides("chat") == {}


def test_save_button_shown_to_those_who_may_change_the_setting(
    backends, settings_editor
):
    page = logged_in(settings_editor).get(reverse(CHAT_URL)).content.decode()
    assert reverse(SAVE_URL) in page
    assert "Save" in page and "as site overrides" in page


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        ("no-answer", "ended without an answer"),
        ("html-200", "could not be understood"),
        ("stream-garbage", "could not be understood"),
        ("echo-400", "refused the request"),
        ("403", "rejected the credentials"),
    ],
)
def test_streams_without_an_answer_and_quoted_keys(
    provider, editor, monkeypatch, failure, expected
):
    """An empty or unreadable stream is an error line, never an empty "done";
    a key the provider quotes is hidden whatever its shape."""
    monkeypatch.setenv("OPENAI_API_KEY", PLAIN_KEY)
    provider.fail(failure, times=3)
    chat = chat_backend_settings(provider)
    with override_settings(WAGTAIL_VECTOR_INDEX={"CHAT_BACKENDS": {"default": chat}}):
        response = logged_in(editor).post(reverse(STREAM_URL), chat_data())
        raw = b"".join(response.streaming_content).decode()
    (line,) = [json.loads(text) for text in raw.splitlines()]
    assert line["type"] == "error"
    assert expected in line["message"]
    assert PLAIN_KEY not in raw and "<" not in line["message"]
