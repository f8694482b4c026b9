"""Backends that call any provider LiteLLM supports, chosen by ``MODEL_ID``.

LiteLLM is imported inside functions only: importing it costs about two
seconds per process, and merely loading the app must not pay that.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from wagtail_vector_index import exceptions
from wagtail_vector_index.ai_utils.backends.base import (
    BaseChatBackend,
    BaseEmbeddingBackend,
    ModelDescription,
)
from wagtail_vector_index.ai_utils.types import (
    AIResponse,
    AIStreamingResponse,
    ChatMessage,
    StreamPart,
    Usage,
)

if TYPE_CHECKING:
    from types import ModuleType

# Model prefixes for which LiteLLM's get_model_info asks a server (Ollama's
# /api/show) about models missing from its map: descriptions must stay offline.
_LOCAL_SERVER_PREFIXES = ("ollama/", "ollama_chat/")

# Things in provider messages that look like credentials.
_SECRET_PATTERN = re.compile(
    r"(sk-[A-Za-z0-9_\-*]{4,}|(?i:bearer)\s+\S+|(?i:api[_-]?key)[\"'=:\s]+\S+)"
)
_DETAIL_LENGTH = 300
_PREFIX_PATTERN = re.compile(
    r"^(?:\s*(?:litellm\.)?\w+(?:Error|Exception)(?::| -)\s*)+"
)


def _litellm() -> ModuleType:
    # LiteLLM tries to download its model map at import unless told otherwise;
    # the bundled map is what a server without internet access can use.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # Its "Give Feedback / Get Help" banner on every error is noise in logs.
    litellm.suppress_debug_info = True
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
    )


def scrub(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """``text`` without anything that looks like a credential, shortened."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[hidden]")
    text = _SECRET_PATTERN.sub("[hidden]", text)
    text = " ".join(text.split())
    if len(text) > _DETAIL_LENGTH:
        text = text[: _DETAIL_LENGTH - 1] + "…"
    return text


def _provider_message(error: Exception) -> str:
    message = str(getattr(error, "message", "") or error)
    # LiteLLM prefixes messages with "litellm.BadRequestError: OpenAIException - ".
    return _PREFIX_PATTERN.sub("", message)


_GARBAGE_HINTS = (
    "expecting value",
    "jsondecodeerror",
    "unterminated string",
    "extra data",
    "invalid control character",
    "expecting property name",
)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_garbage_reply(error: BaseException) -> bool:
    """Whether ``error`` comes from a reply that was not valid JSON."""
    if any(isinstance(e, json.JSONDecodeError) for e in _chain(error)):
        return True
    text = str(error).lower()
    return any(hint in text for hint in _GARBAGE_HINTS)


def _is_unreachable(error: BaseException) -> bool:
    """Whether ``error`` comes from a failure to connect (LiteLLM may report a
    refused connection as an internal server error)."""
    import httpx

    return any(
        isinstance(e, (httpx.ConnectError, ConnectionRefusedError))
        for e in _chain(error)
    )


def translate_error(
    error: Exception, *, alias: str, model_id: str, parameters: dict | None = None
) -> exceptions.AIProviderError | None:
    """The project's exception for a LiteLLM one (``None`` if not a provider error)."""
    _litellm()
    from litellm import exceptions as litellm

    secrets = [
        str(value)
        for key, value in (parameters or {}).items()
        if "key" in key.lower() or "token" in key.lower() or "secret" in key.lower()
    ]
    kwargs = {"alias": alias, "model_id": model_id}
    status = getattr(error, "status_code", None)
    status_detail = f"HTTP {status}" if isinstance(status, int) else None
    # Order matters: LiteLLM's classes inherit from each other (a
    # ContextWindowExceededError is a BadRequestError, a Timeout is an
    # APIConnectionError, a MidStreamFallbackError a ServiceUnavailableError).
    if isinstance(error, litellm.ContextWindowExceededError):
        return exceptions.AIContextWindowExceededError(
            **kwargs, detail=scrub(_provider_message(error), secrets)
        )
    if isinstance(error, (litellm.AuthenticationError, litellm.PermissionDeniedError)):
        # The provider's text may quote part of the key: never pass it on.
        return exceptions.AIAuthenticationError(**kwargs, detail=status_detail)
    if isinstance(error, litellm.RateLimitError):
        return exceptions.AIRateLimitError(**kwargs, detail=status_detail)
    if isinstance(error, litellm.Timeout):
        return exceptions.AITimeoutError(**kwargs)
    if isinstance(error, litellm.MidStreamFallbackError):
        # LiteLLM raises it when a stream breaks off (connection dropped or a
        # broken line) after parts of the answer arrived.
        return exceptions.AIInvalidResponseError(
            **kwargs, detail="the answer stream was cut off"
        )
    if isinstance(
        error,
        (
            litellm.BadRequestError,
            litellm.NotFoundError,
            litellm.UnprocessableEntityError,
            litellm.UnsupportedParamsError,
        ),
    ):
        return exceptions.AIBadRequestError(
            **kwargs, detail=scrub(_provider_message(error), secrets)
        )
    if _is_garbage_reply(error):
        return exceptions.AIInvalidResponseError(**kwargs)
    if _is_unreachable(error):
        return exceptions.AIConnectionError(**kwargs)
    if isinstance(
        error,
        (
            litellm.InternalServerError,
            litellm.ServiceUnavailableError,
            litellm.BadGatewayError,
        ),
    ):
        return exceptions.AIServiceUnavailableError(**kwargs, detail=status_detail)
    if isinstance(error, litellm.APIResponseValidationError):
        return exceptions.AIInvalidResponseError(**kwargs)
    if isinstance(error, litellm.APIConnectionError):
        return exceptions.AIConnectionError(**kwargs)
    if isinstance(error, litellm.APIError):
        return exceptions.AIServiceUnavailableError(**kwargs, detail=status_detail)
    return None


class LiteLLMBackendMixin:
    """Model map lookups and error translation for LiteLLM backends."""

    default_model_id = None

    @classmethod
    def describe_model(cls, model_id: str) -> ModelDescription | None:
        return describe_litellm_model(model_id)

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

    def invalid_response(self, detail: str) -> exceptions.AIInvalidResponseError:
        return exceptions.AIInvalidResponseError(
            alias=self.config.alias,  # type: ignore[attr-defined]
            model_id=self.config.model_id,  # type: ignore[attr-defined]
            detail=detail,
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
        return {"model": self.config.model_id, "messages": messages, **parameters}

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

    def _response(self, response: Any) -> AIResponse:
        choices = getattr(response, "choices", None)
        if not choices:
            raise self.invalid_response("the reply contained no answer")
        texts = []
        for choice in choices:
            message = getattr(choice, "message", None)
            texts.append((getattr(message, "content", None) or "") if message else "")
        usage = _usage(getattr(response, "usage", None))
        hidden = getattr(response, "_hidden_params", None) or {}
        cost = hidden.get("response_cost")
        return AIResponse(
            choices=texts,
            usage=usage,
            cost=cost if cost is not None else self._cost(usage),
            model_id=self.config.model_id,
        )

    def _parts_of(self, chunk: Any, response: AIStreamingResponse) -> list[StreamPart]:
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
        return parts

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

        def parts() -> Iterator[StreamPart]:
            try:
                with self.provider_errors(parameters):
                    for chunk in stream:
                        yield from self._parts_of(chunk, response)
            finally:
                close()

        response = AIStreamingResponse(
            parts=parts(), close=close, model_id=self.config.model_id
        )
        return response

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

        async def parts() -> AsyncIterator[StreamPart]:
            try:
                with self.provider_errors(parameters):
                    async for chunk in stream:
                        for part in self._parts_of(chunk, response):
                            yield part
            finally:
                await aclose()

        response = AIStreamingResponse(
            aparts=parts(), aclose=aclose, model_id=self.config.model_id
        )
        return response


class LiteLLMEmbeddingBackend(LiteLLMBackendMixin, BaseEmbeddingBackend):
    """Embeddings through ``litellm.embedding`` / ``litellm.aembedding``."""

    label = "LiteLLM"

    def count_tokens(self, text: str) -> int:
        return _litellm().token_counter(model=self.config.model_id, text=text)

    def estimate_cost(self, tokens: int) -> float | None:
        try:
            prompt_cost, _ = _litellm().cost_per_token(
                model=self.config.model_id, prompt_tokens=tokens, call_type="embedding"
            )
        except Exception:  # Unknown prices are not an error.
            return None
        return prompt_cost

    def encode(self, text: str) -> list[Any]:
        return list(_litellm().encode(model=self.config.model_id, text=text))

    def decode(self, tokens: list[Any]) -> str:
        return _litellm().decode(model=self.config.model_id, tokens=list(tokens))

    def _vectors(self, response: Any, expected: int) -> list[list[float]]:
        data = getattr(response, "data", None)
        if not isinstance(data, list) or len(data) != expected:
            raise self.invalid_response(
                f"expected {expected} vectors, got "
                f"{len(data) if isinstance(data, list) else 'none'}"
            )

        def get(item: Any, key: str) -> Any:
            return item.get(key) if isinstance(item, dict) else getattr(item, key, None)

        # Providers may return items out of order; "index" says where each goes.
        if all(isinstance(get(item, "index"), int) for item in data):
            data = sorted(data, key=lambda item: get(item, "index"))
        vectors = [get(item, "embedding") for item in data]
        if not all(isinstance(vector, list) and vector for vector in vectors):
            raise self.invalid_response("a vector was missing from the reply")
        return vectors

    def _embed_batch(self, batch: list[str], parameters: dict) -> list[list[float]]:
        with self.provider_errors(parameters):
            response = _litellm().embedding(
                model=self.config.model_id, input=batch, **parameters
            )
        return self._vectors(response, len(batch))

    async def _aembed_batch(
        self, batch: list[str], parameters: dict
    ) -> list[list[float]]:
        with self.provider_errors(parameters):
            response = await _litellm().aembedding(
                model=self.config.model_id, input=batch, **parameters
            )
        return self._vectors(response, len(batch))
