"""AI › AI backends and ``manage.py check_ai_backends``: each alias's
provider, credentials and circuit, and the connection check, against the
loopback provider healthy and failing."""

import io
import json

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.urls import reverse

from tests.utils import (
    BACKENDS_CHECK_URL,
    BACKENDS_URL,
    ECHO_CHAT,
    HASHING_EMBEDDING,
    PLAIN_KEY,
    TEST_API_KEY,
    chat_backend_settings,
    chat_requests,
    embedding_backend_settings,
    logged_in,
)
from wagtail_vector_index import conf, resilience
from wagtail_vector_index.exceptions import AIServiceUnavailableError
from wagtail_vector_index.models import AIUsageRecord

pytestmark = pytest.mark.django_db


def backend_settings(provider, **extra):
    """Chat "default" and "writer" (falling back to "default"), embedding
    "default", an offline backend of each kind."""
    return {
        "CHAT_BACKENDS": {
            "default": chat_backend_settings(provider),
            "writer": chat_backend_settings(
                provider, model="openai/test-writer", FALLBACKS=["default"]
            ),
            "offline": {"CLASS": ECHO_CHAT, "CONFIG": {}},
        },
        "EMBEDDING_BACKENDS": {
            "default": embedding_backend_settings(provider),
            "offline": {"CLASS": HASHING_EMBEDDING, "CONFIG": {}},
        },
        **extra,
    }


@pytest.fixture
def aliases(provider):
    with override_settings(WAGTAIL_VECTOR_INDEX=backend_settings(provider)):
        yield provider


def check(client, kind="chat", alias="default"):
    return client.post(reverse(BACKENDS_CHECK_URL), {"kind": kind, "alias": alias})


def row(response, kind, alias):
    """The HTML of one alias's table row."""
    html = response.content.decode()
    start = html.index(f'data-wvi-backend="{kind}:{alias}"')
    return html[start : html.index("</tr>", start)]


# -- the page ------------------------------------------------------------------


def test_the_page_needs_the_test_pages_permission(aliases, outsider):
    client = logged_in(outsider)
    assert client.get(reverse(BACKENDS_URL)).status_code == 403
    assert check(client).status_code == 403
    assert not aliases.requests


def test_the_page_lists_every_alias_without_calling_a_provider(aliases, editor):
    response = logged_in(editor).get(reverse(BACKENDS_URL))
    assert response.status_code == 200
    assert not aliases.requests
    default = row(response, "chat", "default")
    assert "openai/test-chat" in default and "openai" in default
    assert "present" in default
    assert "closed" in default
    assert 'name="csrfmiddlewaretoken"' in default
    writer = row(response, "chat", "writer")
    assert "<code>default</code>" in writer  # Its fallback.
    offline = row(response, "chat", "offline")
    assert "not needed" in offline and "Offline" in offline
    assert "openai/test-embed" in row(response, "embedding", "default")
    assert "not needed" in row(response, "embedding", "offline")
    assert TEST_API_KEY not in response.content.decode()


def test_missing_credentials_are_named_and_present_ones_never_shown(
    provider, editor, monkeypatch
):
    monkeypatch.delenv("OPENAI_API_KEY")
    settings = backend_settings(provider)
    settings["CHAT_BACKENDS"]["writer"] = chat_backend_settings(
        provider, model="openai/test-writer", DEFAULT_PARAMETERS={"api_key": PLAIN_KEY}
    )
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        response = logged_in(editor).get(reverse(BACKENDS_URL))
    default = row(response, "chat", "default")
    assert "missing" in default and "OPENAI_API_KEY" in default
    assert "present" in row(response, "chat", "writer")
    assert PLAIN_KEY not in response.content.decode()
    assert not provider.requests


def test_a_misconfigured_alias_does_not_break_the_page(aliases, editor):
    settings = backend_settings(aliases)
    settings["EMBEDDING_BACKENDS"]["broken"] = {"CLASS": "no.such.Backend"}
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        client = logged_in(editor)
        response = client.get(reverse(BACKENDS_URL))
        assert response.status_code == 200
        broken = row(response, "embedding", "broken")
        assert "Misconfigured: run manage.py check" in broken
        assert "<form" not in broken
        response = check(client, "embedding", "broken")
    assert response.status_code == 200
    assert "Misconfigured: run manage.py check" in row(response, "embedding", "broken")
    assert not aliases.requests


# -- the check ---------------------------------------------------------------------


def test_a_healthy_check_shows_its_latency(aliases, editor, empty_ledger):
    response = check(logged_in(editor))
    assert response.status_code == 200
    result = row(response, "chat", "default")
    assert 'role="status"' in result
    assert "OK in" in result and " ms" in result
    (request,) = chat_requests(aliases)
    assert request.body["max_tokens"] == 1
    assert request.body["messages"] == [{"role": "user", "content": "Hi"}]
    # Only the checked row shows a result.
    assert 'role="status"' not in row(response, "chat", "writer")
    (record,) = AIUsageRecord.objects.all()
    assert record.feature == "connection check"
    assert record.alias == "default" and record.kind == "chat"
    assert record.user.username == "editor"
    assert record.site is not None


def test_an_embedding_check_sends_one_text(aliases, editor):
    response = check(logged_in(editor), "embedding", "default")
    assert "OK in" in row(response, "embedding", "default")
    (request,) = aliases.requests_to("/v1/embeddings")
    assert request.body["input"] == ["Hi"]
    assert not chat_requests(aliases)


def test_an_offline_check_passes_without_a_request(aliases, editor):
    response = check(logged_in(editor), "embedding", "offline")
    assert "OK in" in row(response, "embedding", "offline")
    assert not aliases.requests


@pytest.mark.parametrize("mode", ["401", "403", "echo-400"])
def test_a_failing_check_shows_the_error_never_the_key(aliases, editor, mode):
    aliases.fail(mode)
    response = check(logged_in(editor))
    assert response.status_code == 200
    result = row(response, "chat", "default")
    assert "help-critical" in result
    assert "OK in" not in result
    assert ("rejected the credentials" if mode != "echo-400" else "refused") in result
    assert TEST_API_KEY not in response.content.decode()
    assert len(chat_requests(aliases)) == 1


def test_the_provider_error_text_is_escaped(aliases, editor):
    aliases.state.error_message = (
        'Unsupported model <script>alert("provider")</script> <b>here</b>.'
    )
    aliases.fail("400")
    response = check(logged_in(editor))
    html = response.content.decode()
    assert "<script>alert" not in html
    assert "<b>here</b>" not in html
    assert "&lt;script&gt;alert(&quot;provider&quot;)&lt;/script&gt;" in html


def test_a_check_tries_the_alias_once_without_fallbacks(aliases, editor):
    aliases.fail_always("500")
    response = check(logged_in(editor), "chat", "writer")
    assert "reported an internal error" in row(response, "chat", "writer")
    (request,) = chat_requests(aliases)
    assert request.body["model"] == "test-writer"


def test_the_check_needs_post_and_a_csrf_token(aliases, editor):
    client = logged_in(editor, enforce_csrf_checks=True)
    assert client.get(reverse(BACKENDS_CHECK_URL)).status_code == 405
    assert check(client).status_code == 403
    assert not aliases.requests
    token = client.get(reverse(BACKENDS_URL)).context["csrf_token"]
    response = client.post(
        reverse(BACKENDS_CHECK_URL),
        {"kind": "chat", "alias": "default", "csrfmiddlewaretoken": str(token)},
    )
    assert response.status_code == 200
    assert len(chat_requests(aliases)) == 1


@pytest.mark.parametrize(
    "data", [{"kind": "chat", "alias": "nope"}, {"kind": "other", "alias": "default"}]
)
def test_an_unknown_backend_is_refused(aliases, editor, data):
    response = logged_in(editor).post(reverse(BACKENDS_CHECK_URL), data)
    assert response.status_code == 400
    assert "There is no such backend to check." in response.content.decode()
    assert not aliases.requests


def test_checks_count_against_the_rate_limit(provider, editor):
    with override_settings(
        WAGTAIL_VECTOR_INDEX=backend_settings(provider, TEST_PAGES_RATE_LIMIT=1)
    ):
        client = logged_in(editor)
        assert "OK in" in row(check(client), "chat", "default")
        response = check(client, "chat", "writer")
        assert response.status_code == 429
        assert "limit of 1 call a minute" in row(response, "chat", "writer")
        # The test pages share the limit.
        page = client.post(
            reverse("wagtail_vector_index:embeddings"),
            {"alias": "default", "texts": "one\ntwo"},
        )
        assert page.status_code == 429
    assert len(provider.requests) == 1


def test_the_circuit_state_is_shown_and_a_check_closes_it(provider, editor):
    settings = backend_settings(
        provider, CIRCUIT_BREAKER={"FAILURE_THRESHOLD": 2, "COOLDOWN_SECONDS": 30}
    )
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        breaker = resilience.breaker(conf.CHAT, "default")
        for _ in range(2):
            breaker.failure(
                AIServiceUnavailableError(
                    alias="default", model_id="openai/test-chat", detail="<i>down</i>"
                )
            )
        client = logged_in(editor)
        response = client.get(reverse(BACKENDS_URL))
        default = row(response, "chat", "default")
        assert ">open<" in default
        assert "one is let through in 30 seconds" in default
        assert "2 failures in a row" in default
        assert "Last error:" in default and "&lt;i&gt;down&lt;/i&gt;" in default
        assert "<i>down</i>" not in default
        assert "closed" in row(response, "chat", "writer")
        assert not provider.requests
        # The check goes past the open circuit; its success closes it.
        response = check(client)
        default = row(response, "chat", "default")
        assert "OK in" in default and "closed" in default
        assert "Last error" not in default
        assert resilience.breaker_state(conf.CHAT, "default").state == "closed"


# -- manage.py check_ai_backends ---------------------------------------------------


def run_command(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("check_ai_backends", *args, stdout=out, stderr=err)
    return out.getvalue()


def test_the_command_checks_every_alias(aliases):
    output = run_command()
    lines = output.splitlines()
    assert len(lines) == 6  # Five aliases and the summary.
    assert lines[0].split()[:5] == [
        "chat",
        "default",
        "openai/test-chat",
        "openai",
        "credentials",
    ]
    assert all(" OK " in line for line in lines[:5])
    assert "5 AI backends checked: all work." in lines[-1]
    assert len(chat_requests(aliases)) == 2  # default and writer.
    assert len(aliases.requests_to("/v1/embeddings")) == 1


def test_the_command_fails_when_a_check_fails(aliases):
    aliases.fail_always("401")
    out = io.StringIO()
    with pytest.raises(CommandError, match="3 of 5 AI backends failed") as raised:
        call_command("check_ai_backends", stdout=out)
    assert raised.value.returncode == 1
    output = out.getvalue()
    assert "FAILED The AI provider rejected the credentials" in output
    assert output.count("FAILED") == 3 and output.count(" OK ") == 2
    assert TEST_API_KEY not in output


def test_the_command_exits_with_status_1(aliases, capsys):
    aliases.fail_always("echo-400")
    utility = ManagementUtility(["manage.py", "check_ai_backends", "--kind", "chat"])
    with pytest.raises(SystemExit) as exited:
        utility.execute()
    assert exited.value.code == 1
    captured = capsys.readouterr()
    assert "2 of 3 AI backends failed their check." in captured.err
    assert TEST_API_KEY not in captured.out + captured.err


def test_the_command_filters_by_kind_and_alias(aliases):
    output = run_command("--kind", "embedding", "--alias", "default")
    assert output.splitlines()[0].startswith("embedding  default  openai/test-embed")
    assert "1 AI backend checked: it works." in output
    assert not chat_requests(aliases)
    output = run_command("--alias", "offline", "--alias", "writer")
    assert [line.split()[:2] for line in output.splitlines()[:3]] == [
        ["chat", "writer"],
        ["chat", "offline"],
        ["embedding", "offline"],
    ]
    assert len(aliases.requests) == 2


def test_the_command_refuses_an_unknown_alias(aliases):
    with pytest.raises(CommandError, match='Not configured: "nope"') as raised:
        run_command("--alias", "nope", "--alias", "default")
    assert raised.value.returncode == 2
    assert not aliases.requests


def test_the_command_prints_json(aliases):
    aliases.fail("401")
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("check_ai_backends", "--json", "--kind", "chat", stdout=out)
    result = json.loads(out.getvalue())
    assert result["ok"] is False
    default, writer, offline = result["backends"]
    assert default == {
        "kind": "chat",
        "alias": "default",
        "model": "openai/test-chat",
        "provider": "openai",
        "offline": False,
        "credentials": "present",
        "missing_credentials": [],
        "ok": False,
        "latency_ms": None,
        "error": default["error"],
    }
    assert "rejected the credentials" in default["error"]
    assert TEST_API_KEY not in out.getvalue()
    assert writer["ok"] is True and writer["latency_ms"] > 0
    assert offline["offline"] is True and offline["credentials"] == "not needed"
    assert offline["provider"] is None and offline["ok"] is True


def test_the_command_reports_missing_credentials(provider, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with override_settings(WAGTAIL_VECTOR_INDEX=backend_settings(provider)):
        output = run_command("--alias", "offline")
        assert "credentials not needed" in output
        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("check_ai_backends", "--alias", "default", stdout=out)
    assert "credentials missing (OPENAI_API_KEY)" in out.getvalue()


# -- describing a provider -----------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "parameters", "expected"),
    [
        ("openai/gpt-4o", {"api_key": PLAIN_KEY}, ("openai", "present", ())),
        (
            "openai/gpt-4o",
            {"extra_headers": {"Authorization": f"Bearer {PLAIN_KEY}"}},
            ("openai", "present", ()),
        ),
        (
            "openai/gpt-4o",
            {"max_tokens": 5},
            ("openai", "missing", ("OPENAI_API_KEY",)),
        ),
        (
            "openai/gpt-4o",
            {"api_key": "  "},
            ("openai", "missing", ("OPENAI_API_KEY",)),
        ),
        (
            "anthropic/claude-3-haiku-20240307",
            {},
            ("anthropic", "missing", ("ANTHROPIC_API_KEY",)),
        ),
        ("ollama/llama3", {}, ("ollama", "not needed", ())),
        ("no-such-provider/model", {}, (None, "unknown", ())),
    ],
)
def test_describe_provider(monkeypatch, model, parameters, expected):
    from wagtail_vector_index.ai_utils.backends.litellm import (
        describe_litellm_provider,
    )

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    found = describe_litellm_provider(model, parameters)
    assert (found.provider, found.credentials, found.missing) == expected
    assert PLAIN_KEY not in repr(found)


def test_describe_provider_reads_the_environment(monkeypatch):
    from wagtail_vector_index.ai_utils.backends.litellm import (
        describe_litellm_provider,
    )

    monkeypatch.setenv("ANTHROPIC_API_KEY", PLAIN_KEY)
    found = describe_litellm_provider("anthropic/claude-3-haiku-20240307", {})
    assert (found.credentials, found.missing) == ("present", ())
