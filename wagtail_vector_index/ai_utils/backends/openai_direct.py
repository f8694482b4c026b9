"""Embedding requests to OpenAI-shaped providers without LiteLLM's reply
objects.

For a batch of 1,536-dimension vectors, LiteLLM's embedding path (the OpenAI
SDK building a model object per vector, LiteLLM converting the reply again
and serialising it for its logging) costs about 0.45 ms of CPU per vector,
several times the provider's own time at 50 ms per 100 inputs. Where LiteLLM
would only pass the request to the OpenAI SDK anyway, the backend sends it
through the same SDK (its authentication, base URL, timeouts and typed
errors) but reads the raw JSON reply and decodes the base64 vectors itself:
about a third of the CPU (see docs/benchmarks.md).

Only when nothing LiteLLM adds is lost: the model's LiteLLM provider is
``openai`` (OpenAI and OpenAI-compatible servers named ``openai/...``),
vectors are asked for as base64, the parameters are ones this path passes on
exactly (:data:`PARAMETERS`), and no LiteLLM callback, custom HTTP client or
TLS setting is configured. Anything else goes through LiteLLM as before.
``CONFIG["EMBEDDING_DIRECT"] = False`` turns it off for a backend.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from types import ModuleType, SimpleNamespace
from typing import Any

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
#: Async clients per event loop: their connections belong to the loop.
_async_clients: weakref.WeakKeyDictionary[Any, dict[tuple, Any]] = (
    weakref.WeakKeyDictionary()
)


def _sync_client(settings: dict[str, Any]) -> Any:
    key = _key(settings)
    client = _sync_clients.get(key)
    if client is None:
        import openai

        with _sync_lock:
            client = _sync_clients.get(key)
            if client is None:
                client = _sync_clients[key] = openai.OpenAI(**settings)
    return client


def _async_client(settings: dict[str, Any]) -> Any:
    import openai

    clients = _async_clients.setdefault(asyncio.get_running_loop(), {})
    key = _key(settings)
    if key not in clients:
        clients[key] = openai.AsyncOpenAI(**settings)
    return clients[key]


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


def _reply(response: Any) -> SimpleNamespace:
    """The JSON reply as the reply readers expect it (``.data``, ``.usage``).

    Anything but a JSON object raises ``ValueError`` (an unreadable reply);
    an error object in place of the vectors raises the SDK's ``APIError``
    carrying its type and code, as LiteLLM's path would meet it.
    """
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
