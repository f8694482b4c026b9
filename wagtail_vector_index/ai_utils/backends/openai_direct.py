"""Embedding requests to OpenAI-shaped providers without LiteLLM's reply
objects.

For a batch of 1,536-dimension vectors, LiteLLM's embedding path (the OpenAI
SDK building a model object per vector, LiteLLM converting the reply again
and serialising it for its logging) costs about 0.45 ms of CPU per vector,
several times the provider's own time at 50 ms per 100 inputs. Where LiteLLM
would only pass the request to the OpenAI SDK anyway, the backend sends it
through the same SDK (its authentication, base URL, timeouts and typed
errors), on the HTTP clients LiteLLM itself would give the SDK (aiohttp for
async requests), but reads the raw reply itself: pydantic-core parses the
JSON and decodes the base64 vectors in one pass, in Rust, and anything else
than what was asked for is read and judged by the json module and
``binascii`` as before. About 0.06 ms of CPU per vector in all, a seventh of
LiteLLM's path (see docs/benchmarks.md).

Only when nothing LiteLLM adds is lost: the model's LiteLLM provider is
``openai`` (OpenAI and OpenAI-compatible servers named ``openai/...``),
vectors are asked for as base64, the parameters are ones this path passes on
exactly (:data:`PARAMETERS`), and no LiteLLM callback, custom HTTP client or
TLS setting is configured. Anything else goes through LiteLLM as before.
``CONFIG["EMBEDDING_DIRECT"] = False`` turns it off for a backend.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
from types import ModuleType, SimpleNamespace
from typing import Any

logger = logging.getLogger(__name__)

#: Parameters passed on as LiteLLM would pass them to the OpenAI SDK.
PARAMETERS = frozenset(
    {
        "api_base",
        "base_url",
        "api_key",
        "organization",
        "timeout",
        "max_retries",
        "dimensions",
        "user",
        "extra_headers",
        "encoding_format",
    }
)

#: LiteLLM settings that make it do more than send the request: with any of
#: them set, requests go through LiteLLM.
_LITELLM_HOOKS = (
    "callbacks",
    "input_callback",
    "success_callback",
    "failure_callback",
    "service_callback",
    "_async_success_callback",
    "_async_failure_callback",
    "_async_input_callback",
    "client_session",
    "aclient_session",
    "cache",
)

_DEFAULT_BASE = "https://api.openai.com/v1"


def request_target(
    litellm: ModuleType, model: str, request: dict[str, Any]
) -> dict[str, Any] | None:
    """How to send ``request`` (LiteLLM's keyword arguments) for ``model``
    (the name LiteLLM's ``openai`` provider sends, without its prefix)
    straight to the provider: the client settings and the SDK call's
    arguments; ``None`` when LiteLLM must send it. The caller checks the
    provider (once per model, cached)."""
    if set(request) - PARAMETERS - {"model", "input"}:
        return None
    if request.get("encoding_format") != "base64":
        return None
    if any(getattr(litellm, name, None) for name in _LITELLM_HOOKS):
        return None
    if getattr(litellm, "ssl_verify", True) is not True:
        return None
    environ = os.environ
    client = {
        "base_url": request.get("api_base")
        or request.get("base_url")
        or getattr(litellm, "api_base", None)
        or environ.get("OPENAI_BASE_URL")
        or environ.get("OPENAI_API_BASE")
        or _DEFAULT_BASE,
        "api_key": request.get("api_key")
        or getattr(litellm, "api_key", None)
        or getattr(litellm, "openai_key", None)
        or environ.get("OPENAI_API_KEY"),
        "organization": request.get("organization")
        or getattr(litellm, "organization", None)
        or environ.get("OPENAI_ORGANIZATION"),
        "timeout": request.get("timeout", getattr(litellm, "request_timeout", 600)),
        "max_retries": request.get("max_retries", 0),
    }
    if not client["api_key"]:
        return None  # LiteLLM says what is missing in its own words.
    body = {"model": model, "input": request["input"], "encoding_format": "base64"}
    for name in ("dimensions", "user"):
        if request.get(name) is not None:
            body[name] = request[name]
    options: dict[str, Any] = {"security": {"bearer_auth": True}}
    if request.get("extra_headers"):
        options["headers"] = dict(request["extra_headers"])
    return {"client": client, "body": body, "options": options}


def _key(settings: dict[str, Any]) -> tuple:
    return tuple(sorted((name, str(value)) for name, value in settings.items()))


_sync_clients: dict[tuple, Any] = {}
_sync_lock = threading.Lock()
#: Async clients per event loop (their connections belong to the loop),
#: with the HTTP client each was given; a closed loop's are let go (and
#: their connections closed) when the next loop asks for a client.
_async_clients: dict[Any, dict[tuple, tuple[Any, Any]]] = {}
_async_lock = threading.Lock()


def _http_client(kind: str) -> Any:
    """The HTTP client LiteLLM itself gives the OpenAI SDK for its requests
    (``kind``: ``"sync"`` or ``"async"``): its transport (aiohttp for async
    requests, where httpx's own costs twice the CPU per reply), proxies and
    TLS settings, so that a request sent here travels as LiteLLM's would.
    ``None`` (the SDK's own client) where this LiteLLM has no such helper."""
    try:
        from litellm.llms.openai.common_utils import BaseOpenAILLM

        if kind == "async":
            return BaseOpenAILLM._get_async_http_client()
        return BaseOpenAILLM._get_sync_http_client()
    except (ImportError, AttributeError):
        return None


def _sync_client(settings: dict[str, Any]) -> Any:
    key = _key(settings)
    client = _sync_clients.get(key)
    if client is None:
        import openai

        with _sync_lock:
            client = _sync_clients.get(key)
            if client is None:
                client = _sync_clients[key] = openai.OpenAI(
                    **settings, http_client=_http_client("sync")
                )
    return client


def _async_client(settings: dict[str, Any]) -> Any:
    import openai

    loop = asyncio.get_running_loop()
    key = _key(settings)
    with _async_lock:
        clients = _async_clients.get(loop)
        if clients is None:
            _let_go(closed_only=True)
            clients = _async_clients[loop] = {}
        if key not in clients:
            http_client = _http_client("async")
            clients[key] = (
                openai.AsyncOpenAI(**settings, http_client=http_client),
                http_client,
            )
        return clients[key][0]


def _let_go(closed_only: bool) -> None:
    """Drop the async clients of closed event loops (``closed_only``) or of
    all loops (at exit), closing their connections at once. An aiohttp
    session can no longer be closed the usual way (awaited) once its loop is
    gone; left to the garbage collector it logs "Unclosed client session".
    So its connector is closed synchronously, as aiohttp's own finalizer
    does and as LiteLLM does for the sessions it replaces."""
    for loop in list(_async_clients):
        if closed_only and not loop.is_closed():
            continue
        for _client, http_client in _async_clients.pop(loop).values():
            transport = getattr(http_client, "_transport", None)
            session = getattr(transport, "client", None)
            connector = getattr(session, "_connector", None)
            close = getattr(connector, "_close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    close()


@atexit.register
def _let_go_at_exit() -> None:
    with _async_lock:
        _let_go(closed_only=False)


def _post(client: Any, target: dict[str, Any]) -> Any:
    """``POST /embeddings`` through the SDK's own request machinery (its
    authentication, base URL, timeout and typed errors) with the body as it
    is: ``embeddings.create()`` would first walk every input through its
    type-driven transform, which costs more than decoding the reply."""
    import httpx

    return client.post(
        "/embeddings",
        body=target["body"],
        options=target["options"],
        cast_to=httpx.Response,
    )


_NO_VALIDATOR = object()
_validator: Any = None


def _base64_reader() -> Any:
    """A pydantic-core validator reading an OpenAI embedding reply whose
    vectors are base64, decoding them to bytes while it parses (in Rust: about
    a fifth of the CPU of ``json.loads`` plus ``binascii``); ``None`` if this
    pydantic-core cannot (an older one ignores ``val_json_bytes`` and would
    hand back the base64 text: checked on a known vector)."""
    global _validator
    if _validator is None:
        _validator = _NO_VALIDATOR
        try:
            from pydantic_core import SchemaValidator
            from pydantic_core import core_schema as schema

            config = schema.CoreConfig(val_json_bytes="base64")
            item = schema.typed_dict_schema(
                {
                    "index": schema.typed_dict_field(
                        schema.int_schema(strict=True), required=False
                    ),
                    "embedding": schema.typed_dict_field(
                        schema.bytes_schema(strict=True)
                    ),
                },
                config=config,
            )
            reply = schema.typed_dict_schema(
                {
                    "data": schema.typed_dict_field(schema.list_schema(item)),
                    "usage": schema.typed_dict_field(
                        schema.any_schema(), required=False
                    ),
                },
                config=config,
            )
            validator = SchemaValidator(reply, config)
            known = validator.validate_json(b'{"data":[{"embedding":"AACAPw=="}]}')
            if known["data"][0]["embedding"] == b"\x00\x00\x80?":  # 1.0
                _validator = validator
        except Exception as error:  # An older pydantic-core: json reads.
            logger.debug("Base64 replies read by the json module: %s", error)
    return None if _validator is _NO_VALIDATOR else _validator


def _decoded_reply(content: bytes) -> SimpleNamespace | None:
    """The reply with its vectors as float32 arrays, if it is exactly what was
    asked for (a ``data`` list of base64 vectors of whole float32 values);
    ``None`` for anything else, which :func:`_reply` then reads and judges
    as before (floats, an error object, invalid base64...). The count, the
    positions, the dimensions and finite values are checked by the caller
    either way."""
    import numpy as np

    reader = _base64_reader()
    if reader is None:
        return None
    try:
        body = reader.validate_json(content)
    except ValueError:  # pydantic-core's ValidationError
        return None
    data = body["data"]
    for item in data:
        raw = item["embedding"]
        if len(raw) % 4:
            return None
        item["embedding"] = np.frombuffer(raw, dtype="<f4")
    usage = body.get("usage")
    return SimpleNamespace(
        data=data,
        usage=SimpleNamespace(**usage) if isinstance(usage, dict) else None,
    )


def _reply(response: Any) -> SimpleNamespace:
    """The JSON reply as the reply readers expect it (``.data``, ``.usage``),
    base64 vectors already decoded where possible (:func:`_decoded_reply`).

    Anything but a JSON object raises ``ValueError`` (an unreadable reply);
    an error object in place of the vectors raises the SDK's ``APIError``
    carrying its type and code, as LiteLLM's path would meet it.
    """
    if (decoded := _decoded_reply(response.content)) is not None:
        return decoded
    body = response.json()
    if not isinstance(body, dict):
        raise ValueError("The embedding reply is not a JSON object.")
    if "data" not in body and isinstance(body.get("error"), dict):
        import openai

        error = body["error"]
        raise openai.APIError(
            str(error.get("message") or "error reply"),
            response.request,
            body=error,
        )
    usage = body.get("usage")
    return SimpleNamespace(
        data=body.get("data"),
        usage=SimpleNamespace(**usage) if isinstance(usage, dict) else None,
    )


def _as_litellm(litellm: ModuleType, error: Exception, model: str) -> Exception:
    """LiteLLM's exception for ``error``, made by LiteLLM's own mapping (as
    for the requests it sends): callers see the same classes, chained the
    same way (context window exceeded, rate limits, ...)."""
    try:
        litellm.exception_type(
            model=model, original_exception=error, custom_llm_provider="openai"
        )
    except Exception as mapped:  # exception_type raises what it maps to.
        return mapped
    return error


def _unreadable(litellm: ModuleType, error: Exception, model: str) -> Exception:
    """A reply that came but could not be used, as LiteLLM's ``APIError``
    (what its own path raises for such replies), chained to the cause."""
    return litellm.APIError(
        status_code=500,
        message=f"The embedding reply could not be read: {error}",
        llm_provider="openai",
        model=model,
    )


def embed(litellm: ModuleType, target: dict[str, Any]) -> SimpleNamespace:
    """One request, sent with the OpenAI SDK; errors as LiteLLM raises them."""
    client = _sync_client(target["client"])
    model = target["body"]["model"]
    try:
        raw = _post(client, target)
    except Exception as error:
        raise _as_litellm(litellm, error, model) from error
    try:
        return _reply(raw)
    except Exception as error:
        raise _unreadable(litellm, error, model) from error


async def aembed(litellm: ModuleType, target: dict[str, Any]) -> SimpleNamespace:
    """:func:`embed`, asynchronously."""
    client = _async_client(target["client"])
    model = target["body"]["model"]
    try:
        raw = await _post(client, target)
    except Exception as error:
        raise _as_litellm(litellm, error, model) from error
    try:
        return _reply(raw)
    except Exception as error:
        raise _unreadable(litellm, error, model) from error
