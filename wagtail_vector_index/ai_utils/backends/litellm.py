"""Backends that call any provider LiteLLM supports, chosen by ``MODEL_ID``.

LiteLLM is imported inside functions only: importing it costs about two
seconds per process, and merely loading the app must not pay that.
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import json
import os
import re
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from wagtail_vector_index import exceptions
from wagtail_vector_index import usage as ledger
from wagtail_vector_index.ai_utils.backends import openai_direct
from wagtail_vector_index.ai_utils.backends.base import (
    CREDENTIALS_MISSING,
    CREDENTIALS_NOT_NEEDED,
    CREDENTIALS_PRESENT,
    CREDENTIALS_UNKNOWN,
    BaseChatBackend,
    BaseEmbeddingBackend,
    ModelDescription,
    ProviderDescription,
)
from wagtail_vector_index.ai_utils.types import (
    AIResponse,
    AIStreamingResponse,
    ChatMessage,
    StreamPart,
    StreamState,
    Usage,
)
from wagtail_vector_index.i18n import gettext as _
from wagtail_vector_index.redaction import (
    has_credentials,
    install_log_filters,
    known_secrets,
    redact,
    remember,
)

if TYPE_CHECKING:
    from types import ModuleType

    import numpy as np

# Model prefixes for which LiteLLM's get_model_info asks a server (Ollama's
# /api/show) about models missing from its map: descriptions must stay offline.
_LOCAL_SERVER_PREFIXES = ("ollama/", "ollama_chat/")

_DETAIL_LENGTH = 300
_PREFIX_PATTERN = re.compile(
    r"^(?:\s*(?:litellm\.)?\w+(?:Error|Exception)(?::| -)\s*)+"
)
#: "Error code: 404 - {'error': ...}": the SDK's rendering of a JSON reply.
_RAW_REPLY_PATTERN = re.compile(r"(?:Error code: \d+\s*-\s*)?[{\[].*$", re.DOTALL)
_QUOTED_MESSAGE_PATTERN = re.compile(
    r"""['"]message['"]\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")"""
)

#: LiteLLM providers served through the OpenAI SDK, whose client retries
#: failed requests on its own unless told not to (``max_retries``).
_OPENAI_SDK_PROVIDERS = frozenset(
    {"openai", "azure", "azure_ai", "text-completion-openai", "custom_openai"}
)


#: LiteLLM providers of local servers that take no key.
_KEYLESS_PROVIDERS = frozenset({"ollama", "ollama_chat"})


#: LiteLLM providers whose embedding API answers ``encoding_format: "base64"``
#: with little-endian float32 bytes: OpenAI, Azure OpenAI, and every
#: OpenAI-compatible server reached as ``openai/<model>`` with an ``api_base``.
_BASE64_PROVIDERS = frozenset({"openai", "azure"})

#: The one warning a base64 reply causes: LiteLLM dumps the SDK's reply, whose
#: ``embedding`` field is typed as a list of floats, and pydantic says it
#: holds a string (one line per vector). Matched whole, so a warning about
#: anything else in the same reply still shows.
_SERIALIZER_WARNING = (
    r"Pydantic serializer warnings:"
    r"(?:\s+PydanticSerializationUnexpectedValue\(Expected `list\[float\]`"
    r" - serialized value may not be as expected"
    r" \[field_name='embedding', input_value='[^']*', input_type=str\]\))+\s*\Z"
)


#: LiteLLM, once :func:`_litellm` has set it up.
_loaded: ModuleType | None = None


def _litellm() -> ModuleType:
    """LiteLLM, set up the first time (and its loggers redacted each time:
    some are created lazily). Called before every use, token counting
    included: after the first call, only the cheap logger check runs (the
    set-up, ``os.environ`` above all, cost a third of chunking a page)."""
    global _loaded
    if _loaded is not None:
        install_log_filters()
        return _loaded
    # LiteLLM tries to download its model map at import unless told otherwise;
    # the bundled map is what a server without internet access can use.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # Its "Give Feedback / Get Help" banner on every error is noise in logs.
    litellm.suppress_debug_info = True
    # LiteLLM's OpenAI embedding path reads ``max_retries=0`` as "not set" and
    # falls back to this (2), so the SDK would retry anyway: with 0 here, the
    # package's ``max_retries=0`` holds for embeddings too (see
    # ``provider_parameters``). Calls that set ``max_retries`` are unaffected.
    litellm.DEFAULT_MAX_RETRIES = 0
    install_log_filters()
    _loaded = litellm
    return litellm


@functools.cache
def describe_litellm_model(model_id: str) -> ModelDescription | None:
    """The token limit, dimensions and parameters LiteLLM knows for a model."""
    litellm = _litellm()
    if (
        model_id.startswith(_LOCAL_SERVER_PREFIXES)
        and model_id not in litellm.model_cost
    ):
        return None
    try:
        info = litellm.get_model_info(model_id)
    except Exception:  # LiteLLM raises several types for "not in the map".
        info = None
    supported = None
    if info is None or info.get("mode") == "chat":
        # LiteLLM knows the parameters of a provider's chat API even for models
        # missing from its map. (For embedding models it answers with that same
        # chat list, which says nothing: checks only ask for chat backends.)
        try:
            supported = litellm.get_supported_openai_params(model_id)
        except Exception:
            supported = None
    if info is None:
        if supported is None:
            return None
        return ModelDescription(supported_parameters=frozenset(supported))
    return ModelDescription(
        token_limit=info.get("max_input_tokens") or info.get("max_tokens"),
        embedding_output_dimensions=info.get("output_vector_size"),
        supported_parameters=frozenset(supported) if supported else None,
        max_output_tokens=info.get("max_output_tokens"),
        supports_vision=_supports_vision(litellm, model_id),
    )


def _supports_vision(litellm: ModuleType, model_id: str) -> bool | None:
    """Whether LiteLLM's map says the model takes images (asked only for
    models the map knows: for others it answers False, which means "not
    known")."""
    try:
        return bool(litellm.supports_vision(model=model_id))
    except Exception:
        return None


def scrub(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` without credentials (``secrets``, by default every one the
    package knows of, and anything that looks like one), on one line and
    shortened: a detail fit for an editor."""
    text = redact(text, secrets)
    text = " ".join(text.split())
    if len(text) > _DETAIL_LENGTH:
        text = text[: _DETAIL_LENGTH - 1] + "…"
    return text


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _http_response(chain: list[BaseException]) -> Any:
    """The provider's HTTP reply behind an error, if it answered with an error
    status (LiteLLM reports many failures that are not as HTTP 500)."""
    import httpx
    import openai

    for error in chain:
        # LiteLLM's own classes subclass the SDK's with a made-up response.
        if type(error).__module__.startswith("litellm"):
            continue
        if isinstance(error, (openai.APIStatusError, httpx.HTTPStatusError)):
            return error.response
    return None


def _provider_message(chain: list[BaseException]) -> str:
    """The provider's own words about the failure, never its raw reply."""
    import openai

    for error in chain:
        # LiteLLM's UnsupportedParamsError is an APIError without a body.
        body = getattr(error, "body", None)
        if isinstance(error, openai.APIError) and isinstance(body, Mapping):
            inner = body.get("error")
            if isinstance(inner, Mapping):
                body = inner
            message = body.get("message") or body.get("detail")
            if isinstance(message, str):
                return message
            if isinstance(inner, str):
                return inner
    message = str(getattr(chain[0], "message", "") or chain[0])
    # LiteLLM prefixes messages with "litellm.BadRequestError: OpenAIException - ".
    message = _PREFIX_PATTERN.sub("", message)
    quoted = _QUOTED_MESSAGE_PATTERN.search(message)
    if quoted:
        return quoted.group(1) or quoted.group(2) or ""
    # Whatever remains of a JSON (or HTML) reply is not for an editor.
    return _RAW_REPLY_PATTERN.sub("", message).replace("<", "").strip()


_GARBAGE_HINTS = (
    "expecting value",
    "jsondecodeerror",
    "unterminated string",
    "extra data",
    "invalid control character",
    "expecting property name",
    "empty or invalid response",
    "invalid response",
    "is not a list",
    "has no attribute",
    "received: '<",
)


def _is_garbage_reply(chain: list[BaseException]) -> bool:
    """Whether the failure comes from a reply that could not be read: not
    JSON, or JSON of a shape LiteLLM could not use."""
    for error in chain:
        if isinstance(
            error, (json.JSONDecodeError, AttributeError, KeyError, TypeError)
        ):
            return True
    text = " ".join(str(error) for error in chain).lower()
    return any(hint in text for hint in _GARBAGE_HINTS)


def _no_credentials(chain: list[BaseException]) -> bool:
    """Whether the OpenAI SDK refused to build a client for want of a key
    (its plain ``OpenAIError``, raised before any request)."""
    import openai

    return any(
        type(error) is openai.OpenAIError and "credentials" in str(error).lower()
        for error in chain
    )


def _is_unreachable(chain: list[BaseException]) -> bool:
    """Whether the failure comes from the connection: refused, reset, or
    closed before the reply was complete (LiteLLM reports these as HTTP 500)."""
    import httpx
    import openai

    return any(
        isinstance(
            error,
            (
                httpx.TransportError,
                ConnectionError,
                openai.APIConnectionError,
            ),
        )
        and not isinstance(error, (httpx.TimeoutException, openai.APITimeoutError))
        for error in chain
    )


def _is_timeout(chain: list[BaseException]) -> bool:
    import httpx
    import openai
    from litellm import exceptions as litellm

    return any(
        isinstance(
            error,
            (
                litellm.Timeout,
                httpx.TimeoutException,
                openai.APITimeoutError,
                TimeoutError,
            ),
        )
        for error in chain
    )


def _retry_after(response: Any) -> float | None:
    """Seconds the provider asked to wait (``Retry-After``), if it said."""
    if response is None:
        return None
    value = response.headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_event(chain: list[BaseException]) -> str | None:
    """The type or code of an error object the provider sent instead of an
    answer (an SSE ``error`` event, or a 200 reply holding ``{"error": ...}``)."""
    import openai

    for error in chain:
        if isinstance(error, openai.APIError) and not isinstance(
            error, openai.APIStatusError
        ):
            named = " ".join(
                dict.fromkeys(
                    value
                    for value in (error.type, error.code)
                    if isinstance(value, str)
                )
            )
            if named:
                return named.lower()
    code = getattr(chain[0], "status_code", None)
    return code.lower() if isinstance(code, str) else None


def _by_status(status: int) -> type[exceptions.AIProviderError]:
    if status in (401, 403, 407):
        return exceptions.AIAuthenticationError
    if status == 429:
        return exceptions.AIRateLimitError
    if status in (408, 504):
        return exceptions.AITimeoutError
    if 400 <= status < 500:
        return exceptions.AIBadRequestError
    if status >= 500:
        return exceptions.AIServiceUnavailableError
    return exceptions.AIInvalidResponseError  # An error raised for a 2xx reply.


def _by_event(named: str) -> type[exceptions.AIProviderError]:
    if "rate" in named or "quota" in named:
        return exceptions.AIRateLimitError
    if "auth" in named or "permission" in named or "key" in named:
        return exceptions.AIAuthenticationError
    if "context" in named:
        return exceptions.AIContextWindowExceededError
    if "invalid_request" in named or "not_found" in named:
        return exceptions.AIBadRequestError
    return exceptions.AIServiceUnavailableError


def translate_error(
    error: Exception, *, alias: str, model_id: str, parameters: dict | None = None
) -> exceptions.AIProviderError | None:
    """The project's exception for a LiteLLM one (``None`` if not a provider error).

    Classified by what happened rather than by LiteLLM's class alone, which
    reports connection failures and unreadable replies as HTTP 500 and some
    statuses (403) as a generic error: the provider's real HTTP status, then
    the connection, then the reply itself.
    """
    _litellm()
    from litellm import exceptions as litellm

    chain = list(_chain(error))
    secrets = known_secrets(parameters)
    kwargs: dict[str, Any] = {"alias": alias, "model_id": model_id}

    def detail() -> str | None:
        return scrub(_provider_message(chain), secrets) or None

    if isinstance(error, litellm.ContextWindowExceededError):
        return exceptions.AIContextWindowExceededError(**kwargs, detail=detail())
    if _no_credentials(chain):
        # The SDK refused to send a request without a key (LiteLLM reports
        # it as HTTP 500): nothing to retry, nothing reached the provider.
        return exceptions.AIAuthenticationError(
            **kwargs, detail=_("no API key is configured for this provider")
        )
    if _is_timeout(chain):
        return exceptions.AITimeoutError(**kwargs)
    response = _http_response(chain)
    if isinstance(error, litellm.MidStreamFallbackError) and response is None:
        # The stream broke off after it began: a dropped connection, lines
        # that are not JSON, or an error event in place of the next part.
        named = _error_event(chain)
        if named:
            return _by_event(named)(
                **kwargs, detail=_("error event: %(name)s") % {"name": named}
            )
        return exceptions.AIInvalidResponseError(
            **kwargs,
            detail=_("the answer stream held lines that are not JSON")
            if any(isinstance(e, json.JSONDecodeError) for e in chain)
            else _("the answer stream was cut off"),
        )
    if response is not None:
        status = response.status_code
        error_class = _by_status(status)
        if error_class is exceptions.AIBadRequestError:
            return error_class(**kwargs, detail=detail() or f"HTTP {status}")
        translated = error_class(**kwargs, detail=f"HTTP {status}")
        translated.retry_after = _retry_after(response)
        return translated
    if _is_unreachable(chain):
        return exceptions.AIConnectionError(**kwargs)
    if _is_garbage_reply(chain) or isinstance(
        error, litellm.APIResponseValidationError
    ):
        return exceptions.AIInvalidResponseError(**kwargs)
    named = _error_event(chain)
    if named:
        return _by_event(named)(
            **kwargs, detail=_("error reply: %(name)s") % {"name": named}
        )
    # No HTTP status, connection failure or unreadable reply behind it: what
    # LiteLLM says, for providers it reaches without the OpenAI SDK.
    if isinstance(error, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
        return exceptions.AIAuthenticationError(**kwargs)
    if isinstance(error, litellm.RateLimitError):
        return exceptions.AIRateLimitError(**kwargs)
    if isinstance(
        error,
        (
            litellm.BadRequestError,
            litellm.NotFoundError,
            litellm.UnprocessableEntityError,
            litellm.UnsupportedParamsError,
        ),
    ):
        return exceptions.AIBadRequestError(**kwargs, detail=detail())
    if isinstance(error, litellm.APIConnectionError):
        return exceptions.AIConnectionError(**kwargs)
    if isinstance(
        error, (litellm.InternalServerError, litellm.ServiceUnavailableError)
    ):
        return exceptions.AIServiceUnavailableError(**kwargs)
    if isinstance(error, litellm.APIError):
        status = getattr(error, "status_code", None)
        return exceptions.AIServiceUnavailableError(
            **kwargs, detail=f"HTTP {status}" if isinstance(status, int) else None
        )
    return None


def describe_litellm_provider(
    model_id: str, parameters: Mapping[str, Any]
) -> ProviderDescription:
    """LiteLLM's provider for ``model_id`` and whether the credentials it
    needs are in ``parameters`` or in the environment (LiteLLM's
    ``validate_environment``, which reads the environment only). Nothing is
    sent anywhere, and no value is read out."""
    provider = _llm_provider(model_id)
    if provider is None:
        return ProviderDescription()
    if provider in _KEYLESS_PROVIDERS:
        return ProviderDescription(provider, CREDENTIALS_NOT_NEEDED)
    if has_credentials(parameters):
        return ProviderDescription(provider, CREDENTIALS_PRESENT)
    api_base = parameters.get("api_base") or parameters.get("base_url")
    api_version = parameters.get("api_version")
    try:
        found = _litellm().validate_environment(
            model=model_id,
            api_base=api_base if isinstance(api_base, str) else None,
            api_version=api_version if isinstance(api_version, str) else None,
        )
    except Exception:  # A provider LiteLLM cannot judge: say so, not fail.
        return ProviderDescription(provider, CREDENTIALS_UNKNOWN)
    missing = tuple(str(name) for name in found.get("missing_keys") or ())
    if found.get("keys_in_environment") and not missing:
        return ProviderDescription(provider, CREDENTIALS_PRESENT)
    return ProviderDescription(provider, CREDENTIALS_MISSING, missing)


class LiteLLMBackendMixin:
    """Model map lookups and error translation for LiteLLM backends."""

    default_model_id = None

    @classmethod
    def describe_model(cls, model_id: str) -> ModelDescription | None:
        return describe_litellm_model(model_id)

    def describe_provider(self) -> ProviderDescription:
        return describe_litellm_provider(
            self.config.model_id,  # type: ignore[attr-defined]
            self.config.default_parameters,  # type: ignore[attr-defined]
        )

    def provider_parameters(self, parameters: dict) -> dict:
        """``parameters`` as LiteLLM gets them: the OpenAI SDK's own retries
        off unless ``max_retries`` is set, so ``timeout`` bounds the call.
        Their credentials are remembered, to be hidden from log records."""
        remember(parameters)
        if "max_retries" in parameters or not _uses_openai_sdk(
            self.config.model_id  # type: ignore[attr-defined]
        ):
            return parameters
        return {**parameters, "max_retries": 0}

    @contextlib.contextmanager
    def provider_errors(self, parameters: dict) -> Iterator[None]:
        """Re-raise LiteLLM's exceptions as the project's, chained."""
        try:
            yield
        except exceptions.AIProviderError:
            raise
        except Exception as error:
            translated = translate_error(
                error,
                alias=self.config.alias,  # type: ignore[attr-defined]
                model_id=self.config.model_id,  # type: ignore[attr-defined]
                parameters=parameters,
            )
            if translated is None:
                raise
            raise translated from error


@functools.cache
def _uses_openai_sdk(model_id: str) -> bool:
    """Whether LiteLLM reaches ``model_id``'s provider through the OpenAI SDK
    (which retries 429s, 5xx and timeouts on its own, twice by default)."""
    return _llm_provider(model_id) in _OPENAI_SDK_PROVIDERS


@functools.cache
def _llm_model_and_provider(model_id: str) -> tuple[str, str] | None:
    """LiteLLM's model name and provider for ``model_id`` (``None`` if it
    knows none)."""
    try:
        model, provider, _, _ = _litellm().get_llm_provider(model_id)
    except Exception:  # An unknown provider: LiteLLM will say so at the call.
        return None
    return model, provider


def _llm_provider(model_id: str) -> str | None:
    """LiteLLM's provider for ``model_id`` (``None`` if it knows none)."""
    found = _llm_model_and_provider(model_id)
    return found[1] if found else None


_quiet_lock = threading.Lock()
_quiet_calls = 0
_quiet_added = False


@contextlib.contextmanager
def _quiet_base64_warnings() -> Iterator[None]:
    """Hide pydantic's serializer warning about base64 ``embedding`` strings
    (:data:`_SERIALIZER_WARNING`, nothing else) while embedding calls run.

    ``warnings.catch_warnings()`` restores a snapshot of the filters when it
    ends, which breaks when calls overlap (concurrent batches of ``aembed``,
    threads): one call's exit would drop the filter another call still needs
    and leave its own behind. Here the filter is added by the first call and
    removed by the last.
    """
    global _quiet_calls, _quiet_added
    with _quiet_lock:
        if _quiet_calls == 0:
            before = len(warnings.filters)
            warnings.filterwarnings(
                "ignore", message=_SERIALIZER_WARNING, category=UserWarning
            )
            # Someone else's identical filter is moved, not added: leave it.
            _quiet_added = len(warnings.filters) > before
        _quiet_calls += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_calls -= 1
            if _quiet_calls == 0 and _quiet_added:
                _quiet_added = False
                for position, item in enumerate(warnings.filters):
                    pattern = getattr(item[1], "pattern", None)
                    if item[0] == "ignore" and pattern == _SERIALIZER_WARNING:
                        del warnings.filters[position]
                        break
                mutated = getattr(warnings, "_filters_mutated", None)
                if mutated is not None:
                    mutated()


def _calls_tools(message: Any) -> bool:
    return bool(
        getattr(message, "tool_calls", None) or getattr(message, "function_call", None)
    )


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    return Usage(
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        total_tokens=getattr(usage, "total_tokens", None),
    )


class LiteLLMChatBackend(LiteLLMBackendMixin, BaseChatBackend):
    """Chat through ``litellm.completion`` / ``litellm.acompletion``."""

    label = "LiteLLM"

    def _request(self, messages: list[ChatMessage], parameters: dict) -> dict:
        return {
            "model": self.config.model_id,
            "messages": messages,
            **self.provider_parameters(parameters),
        }

    def _stream_request(self, messages: list[ChatMessage], parameters: dict) -> dict:
        request = self._request(messages, parameters)
        request["stream"] = True
        description = self.describe_model(self.config.model_id)
        if (
            "stream_options" not in request
            and description
            and description.supported_parameters
            and "stream_options" in description.supported_parameters
        ):
            # Ask for token counts in the last chunk where the provider can.
            request["stream_options"] = {"include_usage": True}
        return request

    #: Set once LiteLLM has said it has no prices for the model: asking again
    #: on every call would cost more than the rest of the package's work.
    _unpriced = False

    def _cost(self, usage: Usage) -> float | None:
        if usage.prompt_tokens is None or usage.completion_tokens is None:
            return None
        if self._unpriced:
            return None
        try:
            prompt_cost, completion_cost = _litellm().cost_per_token(
                model=self.config.model_id,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
        except Exception:  # Unknown prices are not an error.
            self._unpriced = True
            return None
        return prompt_cost + completion_cost

    def estimate_chat_cost(
        self, prompt_tokens: int, completion_tokens: int
    ) -> float | None:
        return self._cost(Usage(prompt_tokens, completion_tokens))

    def _response(self, response: Any) -> AIResponse:
        choices = getattr(response, "choices", None)
        if not choices:
            raise self.invalid_response(_("the reply contained no answer"))
        texts = []
        answered = False
        for choice in choices:
            message = getattr(choice, "message", None)
            text = (getattr(message, "content", None) or "") if message else ""
            texts.append(text)
            # A reply calling tools (parameter "tools") carries no text.
            answered = answered or bool(text) or _calls_tools(message)
        if not answered:
            raise self.invalid_response(_("the reply contained no answer"))
        usage = _usage(getattr(response, "usage", None))
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost")
        return AIResponse(
            choices=texts,
            usage=usage,
            cost=cost if cost is not None else self._cost(usage),
            model_id=self.config.model_id,
        )

    def _parts_of(self, chunk: Any, response: StreamState) -> list[StreamPart]:
        usage = getattr(chunk, "usage", None)
        if usage is not None and getattr(usage, "total_tokens", None):
            response.usage = _usage(usage)
            response.cost = self._cost(response.usage)
        parts: list[StreamPart] = []
        for choice in getattr(chunk, "choices", None) or ():
            delta = getattr(choice, "delta", None)
            content = getattr(delta, "content", None) if delta is not None else None
            # A role-only first chunk or a keep-alive has no content: skip it,
            # never treat it as the end of the stream.
            if content:
                parts.append(
                    {"index": getattr(choice, "index", 0) or 0, "content": content}
                )
            elif _calls_tools(delta):
                response.answered = True
        if parts:
            response.answered = True
        return parts

    def _check_answered(self, response: StreamState) -> None:
        """A stream that ended without a word of answer (only ``[DONE]``, an
        HTML page, lines LiteLLM skipped) is a failure, not an empty answer."""
        if not response.answered:
            raise self.invalid_response(_("the answer stream ended without an answer"))

    def _chat(self, messages: list[ChatMessage], parameters: dict) -> AIResponse:
        with self.provider_errors(parameters):
            response = _litellm().completion(**self._request(messages, parameters))
        return self._response(response)

    async def _achat(self, messages: list[ChatMessage], parameters: dict) -> AIResponse:
        with self.provider_errors(parameters):
            response = await _litellm().acompletion(
                **self._request(messages, parameters)
            )
        return self._response(response)

    def _chat_stream(
        self, messages: list[ChatMessage], parameters: dict
    ) -> AIStreamingResponse:
        with self.provider_errors(parameters):
            stream = _litellm().completion(**self._stream_request(messages, parameters))

        def close() -> None:
            inner = getattr(stream, "completion_stream", None)
            with contextlib.suppress(Exception):
                if hasattr(inner, "close"):
                    inner.close()
            _untie(stream)

        state = StreamState()

        def parts() -> Iterator[StreamPart]:
            try:
                with self.provider_errors(parameters):
                    for chunk in stream:
                        yield from self._parts_of(chunk, state)
                self._check_answered(state)
            finally:
                close()

        return AIStreamingResponse(
            parts=parts(), close=close, model_id=self.config.model_id, state=state
        )

    async def _achat_stream(
        self, messages: list[ChatMessage], parameters: dict
    ) -> AIStreamingResponse:
        with self.provider_errors(parameters):
            stream = await _litellm().acompletion(
                **self._stream_request(messages, parameters)
            )

        async def aclose() -> None:
            with contextlib.suppress(Exception):
                await stream.aclose()
            _untie(stream)

        state = StreamState()

        async def parts() -> AsyncIterator[StreamPart]:
            try:
                with self.provider_errors(parameters):
                    async for chunk in stream:
                        for part in self._parts_of(chunk, state):
                            yield part
                self._check_answered(state)
            finally:
                await aclose()

        return AIStreamingResponse(
            aparts=parts(), aclose=aclose, model_id=self.config.model_id, state=state
        )


def _untie(stream: Any) -> None:
    """Break the reference cycle of a finished LiteLLM stream: its logging
    object keeps the stream itself as ``model_call_details
    ["original_response"]``, so without this the stream (its HTTP response
    and its ``__del__``, which sets context variables) lives until the
    cyclic garbage collector runs, and on Python 3.11 a collection that
    starts inside ``ContextVar.set()`` and runs that ``__del__`` can crash
    the interpreter (CPython issue 148891). Callbacks receive ``None``
    there instead of a stream that has ended."""
    details = getattr(getattr(stream, "logging_obj", None), "model_call_details", None)
    if isinstance(details, dict) and details.get("original_response") is stream:
        details["original_response"] = None


class LiteLLMEmbeddingBackend(LiteLLMBackendMixin, BaseEmbeddingBackend):
    """Embeddings through ``litellm.embedding`` / ``litellm.aembedding``."""

    label = "LiteLLM"

    @functools.cached_property
    def _tokenizer(self) -> Any:
        """LiteLLM's tokenizer for the model, chosen once: LiteLLM chooses it
        again on every ``encode`` otherwise, which cost more than encoding
        a page's text."""
        return _litellm().utils.select_tokenizer(model=self.config.model_id)

    def count_tokens(self, text: str) -> int:
        return _litellm().token_counter(
            model=self.config.model_id, text=text, custom_tokenizer=self._tokenizer
        )

    def estimate_cost(self, tokens: int) -> float | None:
        try:
            prompt_cost, _ = _litellm().cost_per_token(
                model=self.config.model_id, prompt_tokens=tokens, call_type="embedding"
            )
        except Exception:  # Unknown prices are not an error.
            return None
        return prompt_cost

    def encode(self, text: str) -> list[Any]:
        return list(
            _litellm().encode(
                model=self.config.model_id, text=text, custom_tokenizer=self._tokenizer
            )
        )

    def decode(self, tokens: list[Any]) -> str:
        return _litellm().decode(
            model=self.config.model_id,
            tokens=list(tokens),
            custom_tokenizer=self._tokenizer,
        )

    @property
    def asks_base64(self) -> bool:
        """Whether requests ask for base64 vectors (``encoding_format``):
        ``CONFIG["EMBEDDING_BASE64"]`` if set, else by LiteLLM's provider for
        the model (OpenAI, Azure OpenAI, OpenAI-compatible servers)."""
        if self.config.embedding_base64 is not None:
            return self.config.embedding_base64
        return _llm_provider(self.config.model_id) in _BASE64_PROVIDERS

    def _request(self, batch: list[str], parameters: dict) -> dict:
        """The keyword arguments of one ``litellm.embedding`` call. An
        ``encoding_format`` in the parameters (settings, a site's overrides,
        the call) is sent as it is."""
        request = {
            "model": self.config.model_id,
            "input": batch,
            **self.provider_parameters(parameters),
        }
        if "encoding_format" not in request and self.asks_base64:
            request["encoding_format"] = "base64"
        return request

    def _vectors(self, response: Any, expected: int) -> list[Any] | np.ndarray:
        """The reply's vectors in input order: one float32 matrix when they
        came as base64, else what the provider sent (checked by the caller)."""
        import numpy as np

        data = getattr(response, "data", None)
        if not isinstance(data, list) or len(data) != expected:
            count = len(data) if isinstance(data, list) else _("none")
            raise self._wrong_count(expected, count)

        def get(item: Any, key: str) -> Any:
            return item.get(key) if isinstance(item, dict) else getattr(item, key, None)

        # Providers may return items out of order; "index" says where each
        # goes, and must name every input exactly once.
        indexes = [get(item, "index") for item in data]
        in_order = list(range(expected))
        if indexes != in_order and any(index is not None for index in indexes):
            if sorted(i if isinstance(i, int) else -1 for i in indexes) != in_order:
                raise self.invalid_response(
                    _("the vectors' positions (index) do not match the inputs")
                )
            data = sorted(data, key=lambda item: get(item, "index"))
        vectors = [get(item, "embedding") for item in data]
        if any(isinstance(vector, (str, bytes, np.ndarray)) for vector in vectors):
            return self._decoded(vectors)
        return vectors

    def _decoded(self, vectors: list[Any]) -> list[Any] | np.ndarray:
        """Base64 vectors (little-endian float32, as OpenAI sends them)
        decoded: one ``(n, dimensions)`` float32 matrix if every vector was
        base64 (or already decoded, as float32 arrays) of the right length,
        else a list for the checks to judge (a provider may have sent numbers
        for some)."""
        import numpy as np

        rows: list[Any] = []
        for position, vector in enumerate(vectors):
            if isinstance(vector, (str, bytes)):
                try:
                    # strict_mode: validated in C (validate=True runs a
                    # regular expression over each vector first).
                    raw = binascii.a2b_base64(vector, strict_mode=True)
                except (binascii.Error, ValueError):
                    raise self.invalid_response(
                        _("vector %(position)s is not valid base64")
                        % {"position": position}
                    ) from None
                if len(raw) % 4:
                    raise self.invalid_response(
                        _(
                            "vector %(position)s: %(length)s bytes, not a whole "
                            "number of float32 values"
                        )
                        % {"position": position, "length": len(raw)}
                    )
                vector = np.frombuffer(raw, dtype="<f4")
            rows.append(vector)
        dimensions = self.embedding_output_dimensions
        if not all(
            isinstance(row, np.ndarray) and len(row) == dimensions for row in rows
        ):
            return rows
        matrix = np.empty((len(rows), dimensions), dtype=np.float32)
        for position, row in enumerate(rows):
            matrix[position] = row
        return matrix

    def _direct(self, request: dict) -> dict | None:
        """How to send ``request`` without LiteLLM's reply objects, or
        ``None`` (see :mod:`.openai_direct`)."""
        if not self.config.embedding_direct:
            return None
        found = _llm_model_and_provider(self.config.model_id)
        if found is None or found[1] != "openai":
            return None
        return openai_direct.request_target(_litellm(), found[0], request)

    def _embed_batch(
        self, batch: list[str], parameters: dict
    ) -> list[Any] | np.ndarray:
        request = self._request(batch, parameters)
        with self.provider_errors(parameters):
            if direct := self._direct(request):
                response = openai_direct.embed(_litellm(), direct)
            else:
                with _quiet_base64_warnings():
                    response = _litellm().embedding(**request)
        ledger.report_tokens(_usage(getattr(response, "usage", None)).prompt_tokens)
        return self._vectors(response, len(batch))

    async def _aembed_batch(
        self, batch: list[str], parameters: dict
    ) -> list[Any] | np.ndarray:
        request = self._request(batch, parameters)
        with self.provider_errors(parameters):
            if direct := self._direct(request):
                # No pydantic serializer on this path: no warning to quiet.
                response = await openai_direct.aembed(_litellm(), direct)
            else:
                with _quiet_base64_warnings():
                    response = await _litellm().aembedding(**request)
        ledger.report_tokens(_usage(getattr(response, "usage", None)).prompt_tokens)
        return self._vectors(response, len(batch))
