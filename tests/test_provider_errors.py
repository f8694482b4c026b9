"""Provider failures reach the caller as the project's typed exceptions.

The loopback server fails on demand the ways real providers fail; every
error must carry the alias and model, be chained to LiteLLM's exception, and
have a message fit for an editor (no API key, no raw reply).
"""

import asyncio
import socket

import pytest
from django.test import override_settings

from tests.utils import TEST_API_KEY, chat_backend_settings, embedding_backend_settings
from wagtail_vector_index import ai, exceptions

MESSAGES = [{"role": "user", "content": "Hello?"}]

FAILURES = [
    ("401", exceptions.AIAuthenticationError),
    ("429", exceptions.AIRateLimitError),
    ("500", exceptions.AIServiceUnavailableError),
    ("404", exceptions.AIBadRequestError),
    ("400", exceptions.AIBadRequestError),
    ("context", exceptions.AIContextWindowExceededError),
    ("malformed", exceptions.AIInvalidResponseError),
    ("slow", exceptions.AITimeoutError),
]


@pytest.fixture
def failing(provider):
    """Backends with short timeouts, aliased "writer" / "indexer"."""
    provider.state.slow_seconds = 1.5
    fast = {"timeout": 0.5}
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {
                "writer": chat_backend_settings(provider, DEFAULT_PARAMETERS=fast)
            },
            "EMBEDDING_BACKENDS": {
                "indexer": embedding_backend_settings(provider, DEFAULT_PARAMETERS=fast)
            },
        }
    ):
        yield provider


def assert_safe(error, expected_type, alias, model_id):
    assert type(error) is expected_type
    assert error.alias == alias
    assert error.model_id == model_id
    assert type(error.__cause__).__module__ == "litellm.exceptions"
    message = str(error)
    assert alias in message and model_id in message
    assert TEST_API_KEY not in message
    assert "sk-" not in message
    assert "Traceback" not in message
    assert "{" not in message  # No raw JSON from the provider.


@pytest.mark.parametrize(("mode", "expected"), FAILURES)
def test_chat_failures(failing, mode, expected):
    # Fail every attempt, so client-side retries cannot hide the failure.
    failing.fail(mode, times=3)
    with pytest.raises(expected) as caught:
        ai.get_chat_backend("writer").chat(messages=MESSAGES)
    assert_safe(caught.value, expected, "writer", "openai/test-chat")


@pytest.mark.parametrize(
    ("mode", "expected"), [f for f in FAILURES if f[0] in ("401", "429", "500")]
)
def test_streaming_chat_failures_before_the_first_part(failing, mode, expected):
    failing.fail(mode, times=3)
    with pytest.raises(expected) as caught:
        list(ai.get_chat_backend("writer").chat(messages=MESSAGES, stream=True))
    assert_safe(caught.value, expected, "writer", "openai/test-chat")


@pytest.mark.parametrize(
    ("mode", "expected"), [f for f in FAILURES if f[0] in ("401", "malformed", "slow")]
)
async def test_async_chat_failures(failing, mode, expected):
    failing.fail(mode, times=3)
    with pytest.raises(expected) as caught:
        await ai.get_chat_backend("writer").achat(messages=MESSAGES)
    assert_safe(caught.value, expected, "writer", "openai/test-chat")


def test_stream_cut_off_halfway(failing):
    failing.fail("cut")
    stream = ai.get_chat_backend("writer").chat(messages=MESSAGES, stream=True)
    received = []
    with pytest.raises(exceptions.AIInvalidResponseError) as caught:
        for part in stream:
            received.append(part["content"])
    # What arrived before the cut is kept by the caller; the error says why
    # the rest is missing.
    assert received == ["Hello ", "from ", "the ", "loopback "]
    assert "cut off" in str(caught.value)
    assert_safe(
        caught.value, exceptions.AIInvalidResponseError, "writer", "openai/test-chat"
    )


async def test_async_stream_cut_off_halfway(failing):
    failing.fail("cut")
    stream = await ai.get_chat_backend("writer").achat(messages=MESSAGES, stream=True)
    with pytest.raises(exceptions.AIInvalidResponseError, match="cut off"):
        async for _part in stream:
            pass


@pytest.mark.parametrize(
    ("mode", "expected"),
    [f for f in FAILURES if f[0] in ("401", "429", "500", "malformed", "slow")],
)
def test_embedding_failures(failing, mode, expected):
    failing.fail(mode, times=3)
    with pytest.raises(expected) as caught:
        list(ai.get_embedding_backend("indexer").embed(["some text"]))
    assert_safe(caught.value, expected, "indexer", "openai/test-embed")


async def test_async_embedding_failure_stops_the_other_batches(provider):
    embedding = embedding_backend_settings(provider, BATCH_SIZE=1, MAX_CONCURRENCY=1)
    provider.fail("401")
    with override_settings(
        WAGTAIL_VECTOR_INDEX={"EMBEDDING_BACKENDS": {"default": embedding}}
    ):
        with pytest.raises(exceptions.AIAuthenticationError):
            await ai.get_embedding_backend().aembed(["a", "b", "c", "d"])
    # The first batch failed; the queued ones were cancelled, not sent.
    assert len(provider.requests_to("/v1/embeddings")) == 1


def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_server(provider):
    chat = chat_backend_settings(provider)
    chat["CONFIG"]["DEFAULT_PARAMETERS"]["api_base"] = (
        f"http://127.0.0.1:{_closed_port()}/v1"
    )
    with override_settings(WAGTAIL_VECTOR_INDEX={"CHAT_BACKENDS": {"default": chat}}):
        with pytest.raises(exceptions.AIConnectionError) as caught:
            ai.get_chat_backend().chat(messages=MESSAGES)
    assert_safe(
        caught.value, exceptions.AIConnectionError, "default", "openai/test-chat"
    )


@pytest.mark.parametrize("style", ["chat", "achat", "stream", "embed", "aembed"])
def test_no_api_key_at_all_is_an_authentication_error_never_retried(
    provider, monkeypatch, style
):
    # The OpenAI SDK refuses to build a client without a key, before any
    # request; LiteLLM reports that as an HTTP 500, which is not retryable.
    monkeypatch.delenv("OPENAI_API_KEY")
    settings = {
        "CHAT_BACKENDS": {"default": chat_backend_settings(provider, MAX_RETRIES=2)},
        "EMBEDDING_BACKENDS": {
            "default": embedding_backend_settings(provider, MAX_RETRIES=2)
        },
    }
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        with pytest.raises(exceptions.AIAuthenticationError) as caught:
            if style == "chat":
                ai.get_chat_backend().chat(messages=MESSAGES)
            elif style == "achat":
                asyncio.run(ai.get_chat_backend().achat(messages=MESSAGES))
            elif style == "stream":
                ai.get_chat_backend().chat(messages=MESSAGES, stream=True)
            elif style == "embed":
                list(ai.get_embedding_backend().embed(["text"]))
            else:
                asyncio.run(ai.get_embedding_backend().aembed(["text"]))
    assert "no API key is configured" in str(caught.value)
    assert caught.value.attempts == 1
    assert provider.requests == []


def test_an_api_key_in_the_parameters_never_reaches_the_message(provider):
    secret = "my-very-secret-value"
    chat = chat_backend_settings(provider, DEFAULT_PARAMETERS={"api_key": secret})
    provider.fail("400")
    provider.state.reply = secret
    with override_settings(WAGTAIL_VECTOR_INDEX={"CHAT_BACKENDS": {"default": chat}}):
        with pytest.raises(exceptions.AIBadRequestError) as caught:
            ai.get_chat_backend().chat(messages=MESSAGES)
    (request,) = provider.requests_to("/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {secret}"
    assert secret not in str(caught.value)


def test_retryable_errors_say_so():
    assert exceptions.AIRateLimitError.retryable
    assert exceptions.AITimeoutError.retryable
    assert not exceptions.AIAuthenticationError.retryable
    assert not exceptions.AIBadRequestError.retryable
