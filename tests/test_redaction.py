"""Credentials never leave: redaction of messages and log records."""

import logging

import pytest

from wagtail_vector_index import redaction
from wagtail_vector_index.redaction import (
    RedactingFilter,
    get_logger,
    known_secrets,
    redact,
)


def test_keys_in_the_environment_are_hidden_whatever_their_shape(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ant-plain-value-1")
    monkeypatch.setenv("AZURE_AD_TOKEN", "tokenvalue2222")
    monkeypatch.setenv("UNRELATED_SETTING", "visible-value-3")
    text = "saw ant-plain-value-1 and tokenvalue2222 and visible-value-3"
    assert redact(text) == "saw [hidden] and [hidden] and visible-value-3"


def test_credential_parameters_and_headers_are_hidden():
    parameters = {
        "api_key": "param-key-4444",
        "extra_headers": {"X-Custom-Auth": "header-value-5555"},
        "temperature": 0.5,
        "api_base": "http://127.0.0.1:9/v1",
    }
    secrets = known_secrets(parameters)
    assert "param-key-4444" in secrets and "header-value-5555" in secrets
    assert "http://127.0.0.1:9/v1" not in secrets
    assert redact("key param-key-4444, header header-value-5555", secrets) == (
        "key [hidden], header [hidden]"
    )


def test_a_key_containing_another_is_hidden_whole(monkeypatch):
    monkeypatch.setenv("SHORT_API_KEY", "abcdef123")
    monkeypatch.setenv("LONG_API_KEY", "abcdef123456789")
    assert redact("x abcdef123456789 y") == "x [hidden] y"


def test_key_shaped_text_is_hidden_without_knowing_the_key():
    text = (
        "Authorization: Bearer abc.def.ghi, api_key=zzz9, sk-proj-12345678, "
        "https://example.invalid/v1/models?key=AIzaSecret&alt=json"
    )
    redacted = redact(text, [])
    for secret in ("abc.def.ghi", "zzz9", "sk-proj-12345678", "AIzaSecret"):
        assert secret not in redacted
    assert "alt=json" in redacted


def test_short_values_are_not_replaced_everywhere(monkeypatch):
    monkeypatch.setenv("TINY_TOKEN", "a")
    assert redact("a cat", None) == "a cat"


def test_remembered_call_credentials_are_hidden_in_later_records(monkeypatch):
    monkeypatch.setattr(redaction, "_remembered", set())
    redaction.remember({"api_key": "remembered-key-6666", "timeout": 3})
    assert "remembered-key-6666" in known_secrets()
    assert redact("remembered-key-6666") == "[hidden]"


def test_log_filter_hides_keys_in_arguments_and_tracebacks(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "logged-secret-7777")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    logger = get_logger("wagtail_vector_index.tests.redaction")
    handler = Keep()
    logger.addHandler(handler)
    try:
        try:
            try:
                raise ValueError("provider said logged-secret-7777")
            except ValueError as cause:
                raise RuntimeError("wrapped") from cause
        except RuntimeError:
            logger.exception("call failed with %s", "logged-secret-7777")
    finally:
        logger.removeHandler(handler)
    (record,) = records
    formatted = logging.Formatter().format(record)
    assert "logged-secret-7777" not in formatted
    assert "call failed with [hidden]" in formatted
    assert "provider said [hidden]" in formatted  # The chained cause, redacted.


def test_filter_is_installed_on_litellm_loggers():
    from wagtail_vector_index.ai_utils.backends.litellm import _litellm

    _litellm()
    for name in ("LiteLLM", "openai", "openai._base_client", "httpx"):
        assert any(
            isinstance(f, RedactingFilter) for f in logging.getLogger(name).filters
        ), name


@pytest.mark.parametrize("text", ["", "nothing secret here"])
def test_plain_text_is_unchanged(text):
    assert redact(text, []) == text


def test_log_filters_reach_loggers_created_after_the_first_call():
    """install_log_filters() runs before every provider call and skips its scan
    while no logger was created; a logger LiteLLM creates later still gets the
    filter on the next call."""
    import logging

    from wagtail_vector_index import redaction

    redaction.install_log_filters()
    late = logging.getLogger("openai.created_later_by_a_provider_module")
    assert redaction._FILTER not in late.filters
    redaction.install_log_filters()
    assert redaction._FILTER in late.filters
