"""Every fault the loopback provider can produce, through every call style,
with the key given three ways.

For each case the call must raise the project's exception of the right class
(with ``retryable`` as that class says), make exactly one request (no hidden
retries of the SDK), end within the configured timeout, and leave no key and
no raw provider text in the message or in any log record, LiteLLM's debug
log included.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from django.test import override_settings

from tests.providers import FAILURE_MODES
from tests.utils import OPENAI_CLASS, OPENAI_EMBEDDING_CLASS
from wagtail_vector_index import ai, exceptions
from wagtail_vector_index.redaction import LOGGERS

MESSAGES = [{"role": "user", "content": "Hello?"}]
TIMEOUT = 0.5
#: Time allowed beyond the timeout: process scheduling on a busy 2-core
#: machine (a first async call took 1.9 s under load). Hidden retries would
#: take far longer (a 429's Retry-After here is 30 s), and the request count
#: below proves there are none.
SLACK = 2.5

CONNECTION = exceptions.AIConnectionError
INVALID = exceptions.AIInvalidResponseError
UNAVAILABLE = exceptions.AIServiceUnavailableError
BAD_REQUEST = exceptions.AIBadRequestError

#: The exception each mode raises, whatever the call style (see STREAMED).
EXPECTED = {
    "401": exceptions.AIAuthenticationError,
    "403": exceptions.AIAuthenticationError,
    "404": BAD_REQUEST,
    "400": BAD_REQUEST,
    "422": BAD_REQUEST,
    "echo-400": BAD_REQUEST,
    "echo-404": BAD_REQUEST,
    "context": exceptions.AIContextWindowExceededError,
    "429": exceptions.AIRateLimitError,
    "429-bare": exceptions.AIRateLimitError,
    "500": UNAVAILABLE,
    "502": UNAVAILABLE,
    "503": UNAVAILABLE,
    "html-500": UNAVAILABLE,
    "html-200": INVALID,
    "malformed": INVALID,
    "empty-body": INVALID,
    "wrong-json": INVALID,
    "no-answer": INVALID,
    "null-content": INVALID,
    "stream-garbage": INVALID,
    "stream-error": UNAVAILABLE,
    "reset": CONNECTION,
    "drop": CONNECTION,
    "cut": CONNECTION,
    "slow": exceptions.AITimeoutError,
}
#: A stream that breaks off after it began is an unusable answer.
STREAMED = {"drop": INVALID, "cut": INVALID}
EMBEDDING_ONLY = [mode for mode in FAILURE_MODES if mode.startswith("emb-")]
assert set(EXPECTED) | set(EMBEDDING_ONLY) == set(FAILURE_MODES)

CHAT_STYLES = ("chat", "achat", "stream", "astream")
EMBEDDING_STYLES = ("embed", "aembed")

#: (how the key is given, the key). Keys that do not look like ``sk-...``
#: must be hidden as well as those that do.
KEYS = [
    ("env-sk", "sk-matrix-secret-key-0001"),
    ("env-plain", "plainMatrixSecret4242"),
    ("parameter", "param-secret-value-777"),
]

CASES = [
    pytest.param(mode, style, source, key, id=f"{mode}-{style}-{source}")
    for mode in FAILURE_MODES
    for style in (
        EMBEDDING_STYLES if mode in EMBEDDING_ONLY else CHAT_STYLES + EMBEDDING_STYLES
    )
    for source, key in KEYS
]


def call(style: str) -> None:
    """Make one call in ``style`` and read its answer to the end."""
    if style in EMBEDDING_STYLES:
        backend = ai.get_embedding_backend("indexer")
        if style == "embed":
            list(backend.embed(["some text", "more text"]))
        else:
            asyncio.run(backend.aembed(["some text", "more text"]))
        return
    backend = ai.get_chat_backend("writer")
    if style == "chat":
        backend.chat(messages=MESSAGES)
    elif style == "stream":
        list(backend.chat(messages=MESSAGES, stream=True))
    elif style == "achat":
        asyncio.run(backend.achat(messages=MESSAGES))
    else:

        async def read() -> None:
            stream = await backend.achat(messages=MESSAGES, stream=True)
            async for _part in stream:
                pass

        asyncio.run(read())


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def logs():
    """Every record of LiteLLM, the SDK, httpx and the package, at DEBUG."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler.lines
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def litellm_debug():
    """LiteLLM's own debug output on, as the fault probe had it."""
    import litellm

    previous = litellm.set_verbose
    litellm._turn_on_debug()
    yield
    litellm.set_verbose = previous
    logging.getLogger("LiteLLM").setLevel(logging.WARNING)


def backends(provider, source: str, key: str) -> dict:
    """Settings for a chat and an embedding backend on ``provider`` with the
    key given in ``source``; no ``max_retries``: the default must hold."""
    parameters = {"api_base": provider.openai_base, "timeout": TIMEOUT}
    if source == "parameter":
        parameters["api_key"] = key

    def entry(backend_class: str, model: str, **config) -> dict:
        return {
            "CLASS": backend_class,
            "CONFIG": {
                "MODEL_ID": model,
                "TOKEN_LIMIT": 4096,
                "DEFAULT_PARAMETERS": dict(parameters),
                **config,
            },
        }

    return {
        "CHAT_BACKENDS": {"writer": entry(OPENAI_CLASS, "openai/test-chat")},
        "EMBEDDING_BACKENDS": {
            "indexer": entry(
                OPENAI_EMBEDDING_CLASS,
                "openai/test-embed",
                EMBEDDING_OUTPUT_DIMENSIONS=8,
            )
        },
    }


@pytest.mark.parametrize(("mode", "style", "source", "key"), CASES)
def test_fault(provider, monkeypatch, logs, litellm_debug, mode, style, source, key):
    if source == "parameter":
        monkeypatch.delenv("OPENAI_API_KEY")
    else:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    provider.state.slow_seconds = TIMEOUT + 1.0
    provider.fail_always(mode)
    expected = EXPECTED.get(mode, INVALID)
    if style in ("stream", "astream"):
        expected = STREAMED.get(mode, expected)

    with override_settings(WAGTAIL_VECTOR_INDEX=backends(provider, source, key)):
        started = time.monotonic()
        with pytest.raises(exceptions.AIProviderError) as caught:
            call(style)
        elapsed = time.monotonic() - started

    error = caught.value
    assert type(error) is expected, f"{type(error).__name__}: {error}"
    assert error.retryable is expected.retryable
    assert error.alias in ("writer", "indexer")
    message = str(error)
    assert key not in message
    # Nothing of the provider's raw reply: no JSON, no HTML.
    assert "{" not in message and "<" not in message
    # One request: the SDK's own retries are off, and ``timeout`` bounds it.
    assert len(provider.requests) == 1
    assert elapsed < TIMEOUT + SLACK
    assert logs, "LiteLLM's debug log should have recorded the call"
    leaked = [line for line in logs if key in line]
    assert not leaked, leaked[:1]
