"""Base classes shared by every chat and embedding backend."""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ImproperlyConfigured

from wagtail_vector_index import conf, embedding_cache, resilience, usage
from wagtail_vector_index.ai_utils.types import (
    IMAGE_PART_TOKENS,
    AIResponse,
    AIStreamingResponse,
    ChatMessage,
    StreamPart,
    image_parts,
    message_text,
)
from wagtail_vector_index.exceptions import (
    AIInvalidResponseError,
    AIVisionNotSupportedError,
    InvalidAIBackendError,
)
from wagtail_vector_index.i18n import gettext as _
from wagtail_vector_index.parameters import EffectiveParameter, ParameterLayers

if TYPE_CHECKING:
    import numpy as np

logger = logging.getLogger(__name__)

#: The usage ledger's feature for :meth:`BaseBackend.check_connection`.
_CONNECTION_CHECK = "connection check"

_TOKEN = re.compile(r"\s*\S+\s*")

#: Keyword arguments the backend sets itself; they cannot come from settings
#: or call keyword arguments.
RESERVED_PARAMETERS = frozenset({"model", "messages", "input", "stream"})

#: Scope arguments of the package's own methods (``query(request=...)``):
#: never model parameters. A call given one was meant for
#: ``ai.get_chat_backend(site=..., request=...)``; sent on, a request object
#: would fail in the provider's client ("not JSON serializable").
SCOPE_ARGUMENTS = frozenset({"request", "site"})

#: Generation parameters some models reject; where LiteLLM lists a model's
#: supported parameters, these are checked against that list.
MODEL_PARAMETERS = frozenset(
    {
        "temperature",
        "top_p",
        "n",
        "stop",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "seed",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "logprobs",
        "top_logprobs",
        "reasoning_effort",
    }
)


@dataclass(frozen=True)
class ModelDescription:
    """What is known about a model without calling it."""

    token_limit: int | None = None
    embedding_output_dimensions: int | None = None
    #: Parameter names the model accepts, or ``None`` when unknown.
    supported_parameters: frozenset[str] | None = None
    #: The most tokens the model writes in one answer, or ``None`` when unknown.
    max_output_tokens: int | None = None
    #: Whether the model takes images, or ``None`` when unknown.
    supports_vision: bool | None = None


@dataclass(frozen=True)
class BackendConfig:
    """The resolved configuration of one backend (see ``backend.config``)."""

    alias: str
    model_id: str
    token_limit: int
    default_parameters: Mapping[str, Any] = field(default_factory=dict)
    embedding_output_dimensions: int | None = None
    batch_size: int = 2048
    batch_token_limit: int = 300_000
    max_concurrency: int = 4
    #: Ask the provider for base64-encoded float32 vectors (``True``), for
    #: JSON numbers (``False``), or decide by the provider (``None``).
    embedding_base64: bool | None = None
    #: Let OpenAI-shaped embedding requests skip LiteLLM's reply objects
    #: where nothing is lost (see ``backends/openai_direct.py``).
    embedding_direct: bool = True
    #: Retries of a retryable failure (``CONFIG["MAX_RETRIES"]``).
    max_retries: int = 2
    #: Aliases tried in order when this one fails (``CONFIG["FALLBACKS"]``).
    fallbacks: tuple[str, ...] = ()
    #: The longest one request may take (``CONFIG["ATTEMPT_TIMEOUT"]``);
    #: ``None``: what is left of the call's ``timeout``.
    attempt_timeout: float | None = None
    #: Whether the model takes images (``CONFIG["SUPPORTS_VISION"]``, else
    #: LiteLLM's model map); ``None``: unknown.
    supports_vision: bool | None = None


#: What :meth:`BaseBackend.describe_provider` says of a backend's credentials.
CREDENTIALS_PRESENT = "present"
CREDENTIALS_MISSING = "missing"
#: The backend calls no provider, or one that takes no key (a local server).
CREDENTIALS_NOT_NEEDED = "not needed"
#: The provider is not known, so neither are the credentials it needs.
CREDENTIALS_UNKNOWN = "unknown"


@dataclass(frozen=True)
class ProviderDescription:
    """Who a backend calls and whether it has what it needs to, found
    without calling anyone. Never holds a credential's value."""

    #: The provider's name (LiteLLM's, e.g. ``"openai"``), or ``None``.
    provider: str | None = None
    #: One of the ``CREDENTIALS_*`` values.
    credentials: str = CREDENTIALS_UNKNOWN
    #: Names of the environment variables the provider needs and lacks.
    missing: tuple[str, ...] = ()


class BaseBackend:
    """Behaviour common to chat and embedding backends."""

    #: ``"chat"`` or ``"embedding"``; checks use it to catch a class
    #: configured under the wrong kind.
    kind: ClassVar[str] = ""
    #: A name for people, shown in the admin.
    label: ClassVar[str] = ""
    #: True for backends that never call a provider.
    offline: ClassVar[bool] = False
    #: ``MODEL_ID`` to use when the settings give none; ``None`` makes it required.
    default_model_id: ClassVar[str | None] = None
    default_batch_size: ClassVar[int] = 2048
    default_batch_token_limit: ClassVar[int] = 300_000
    default_max_concurrency: ClassVar[int] = 4
    #: Who the backend's calls are recorded for (see :meth:`with_usage`).
    attribution: usage.UsageContext = usage.EMPTY
    #: Gives the backend of another alias of the same kind, configured as
    #: this one is (the same site's overrides), for ``CONFIG["FALLBACKS"]``.
    #: Set by :mod:`wagtail_vector_index.ai`; ``None`` (a backend built
    #: without the project's settings): the fallbacks are not followed.
    fallback_source: Callable[[str], BaseBackend] | None = None

    def __init__(
        self, config: BackendConfig, parameters: ParameterLayers | None = None
    ) -> None:
        #: The layers of parameters this backend sends (settings, then a
        #: site's overrides); ``config.default_parameters`` is their merge.
        self.parameters = parameters or ParameterLayers(
            settings=config.default_parameters
        )
        self.config = replace(config, default_parameters=self.parameters.values())

    def with_site_parameters(
        self, site: Mapping[str, Any], site_alias: Mapping[str, Any]
    ) -> BaseBackend:
        """A copy of this backend with a site's overrides merged in.

        Site values the model does not support (LiteLLM knows which) are left
        out, so an override meant for other models never fails a call.
        """
        layers = ParameterLayers(
            settings=self.parameters.settings,
            site={k: v for k, v in site.items() if self.supports_parameter(k)},
            site_alias={
                k: v for k, v in site_alias.items() if self.supports_parameter(k)
            },
        )
        backend = type(self)(self.config, layers)
        backend.attribution = self.attribution
        backend.fallback_source = self.fallback_source
        return backend

    def resilience_chain(self) -> list[BaseBackend]:
        """This backend, then the backends of its ``CONFIG["FALLBACKS"]``
        that can stand in for it, in order (their calls recorded as this
        one's are)."""
        chain: list[BaseBackend] = [self]
        if not self.config.fallbacks or self.fallback_source is None:
            return chain
        for alias in self.config.fallbacks:
            if any(backend.alias == alias for backend in chain):
                continue  # A loop, which the checks report (E025).
            try:
                backend = copy.copy(self.fallback_source(alias))
            except ImproperlyConfigured as error:  # Reported by the checks.
                logger.warning("Fallback %r of %r is unusable: %s", alias, self, error)
                continue
            if not self.can_fall_back_to(backend):
                logger.warning("%r cannot fall back to %r", self, backend)
                continue
            backend.attribution = self.attribution
            chain.append(backend)
        return chain

    def can_fall_back_to(self, other: BaseBackend) -> bool:
        """Whether ``other`` may answer in this backend's place."""
        return other.kind == self.kind

    #: True on the copy :meth:`check_connection` sends: its circuit breaker
    #: is asked nothing (a check must reach the provider), only told.
    probing: bool = False

    def check_connection(self) -> float:
        """Send the smallest request this backend can make and return the
        seconds it took; a failure raises as a call's would (an
        :class:`~wagtail_vector_index.exceptions.AIProviderError`).

        Only this alias is tried, once: no retries, no fallbacks, and even
        when its circuit is open (a success closes it, a failure counts).
        The call is recorded in the usage ledger as "connection check".
        """
        probe = copy.copy(self)
        probe.config = replace(self.config, max_retries=0, fallbacks=())
        probe.probing = True
        started = time.perf_counter()
        with usage.usage_context(feature=_CONNECTION_CHECK):
            probe._smallest_request()
        return time.perf_counter() - started

    def _smallest_request(self) -> None:
        raise NotImplementedError

    def describe_provider(self) -> ProviderDescription:
        """The provider this backend calls and whether its credentials are
        present (in the parameters or the environment); no request is made."""
        if self.offline:
            return ProviderDescription(credentials=CREDENTIALS_NOT_NEEDED)
        return ProviderDescription()

    def with_usage(
        self,
        *,
        feature: str | None = None,
        site: Any = None,
        user: Any = None,
        request: Any = None,
        user_budget: bool = False,
    ) -> BaseBackend:
        """A copy of this backend whose calls are recorded in the usage
        ledger under ``feature``, ``site`` and ``user`` (objects or primary
        keys; ``request`` gives both), and whose calls count against the site's
        budget (and with ``user_budget=True``, the user's daily budget).
        Values given here replace the backend's; an enclosing
        :func:`wagtail_vector_index.usage.usage_context` wins over both."""
        backend = copy.copy(self)
        given = usage.make_context(
            feature=feature,
            site=site,
            user=user,
            request=request,
            user_budget=user_budget,
        )
        backend.attribution = self.attribution.under(given)
        return backend

    def supports_parameter(self, name: str) -> bool:
        """False only where the model is known not to accept ``name``."""
        if name not in MODEL_PARAMETERS:
            return True
        description = self.describe_model(self.config.model_id)
        supported = description.supported_parameters if description else None
        return supported is None or name in supported

    def effective_parameters(
        self, call: Mapping[str, Any] | None = None
    ) -> dict[str, EffectiveParameter]:
        """The parameters a call with ``call`` keyword arguments sends, with
        the source of each value."""
        return self.parameters.effective(call)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} alias={self.config.alias!r} "
            f"model={self.config.model_id!r}>"
        )

    @property
    def alias(self) -> str:
        return self.config.alias

    @property
    def display_name(self) -> str:
        """What an editor sees: the model, flagged when it is offline."""
        values = {"alias": self.config.alias, "model": self.config.model_id}
        if self.offline:
            # Translators: a backend in a list of choices; it calls no provider.
            return _("%(alias)s: %(model)s (offline)") % values
        return f"{self.config.alias}: {self.config.model_id}"

    @classmethod
    def describe_model(cls, model_id: str) -> ModelDescription | None:
        """What the backend knows about ``model_id``; ``None`` if nothing."""
        return None

    @classmethod
    def missing_requirement(cls) -> str | None:
        """The command that installs a package this backend needs and lacks
        (reported by a system check, E040); ``None`` when nothing is missing.
        Must not import the package."""
        return None

    @classmethod
    def from_settings(cls, alias: str, config: Mapping[str, Any]) -> BaseBackend:
        """Build the backend from the ``CONFIG`` mapping of its settings."""
        return cls(cls.build_config(alias, config))

    @classmethod
    def build_config(cls, alias: str, config: Mapping[str, Any]) -> BackendConfig:
        model_id = config.get("MODEL_ID") or cls.default_model_id
        if not isinstance(model_id, str) or not model_id:
            raise InvalidAIBackendError(alias, _('CONFIG["MODEL_ID"] is required.'))
        description = cls.describe_model(model_id) or ModelDescription()
        token_limit = config.get("TOKEN_LIMIT") or description.token_limit
        if not token_limit:
            raise InvalidAIBackendError(
                alias,
                _(
                    'the token limit of model "%(model)s" is unknown; set '
                    'CONFIG["TOKEN_LIMIT"].'
                )
                % {"model": model_id},
            )
        dimensions = (
            config.get("EMBEDDING_OUTPUT_DIMENSIONS")
            or description.embedding_output_dimensions
        )
        if cls.kind == "embedding" and not dimensions:
            raise InvalidAIBackendError(
                alias,
                _(
                    'the output dimensions of model "%(model)s" are unknown; set '
                    'CONFIG["EMBEDDING_OUTPUT_DIMENSIONS"].'
                )
                % {"model": model_id},
            )
        return BackendConfig(
            alias=alias,
            model_id=model_id,
            token_limit=token_limit,
            default_parameters=dict(config.get("DEFAULT_PARAMETERS") or {}),
            embedding_output_dimensions=dimensions,
            batch_size=config.get("BATCH_SIZE") or cls.default_batch_size,
            batch_token_limit=(
                config.get("BATCH_TOKEN_LIMIT") or cls.default_batch_token_limit
            ),
            max_concurrency=config.get("MAX_CONCURRENCY")
            or cls.default_max_concurrency,
            embedding_base64=_optional_bool(config.get("EMBEDDING_BASE64")),
            embedding_direct=config.get("EMBEDDING_DIRECT") is not False,
            max_retries=_count(config.get("MAX_RETRIES"), conf.DEFAULT_MAX_RETRIES),
            fallbacks=_aliases(config.get("FALLBACKS")),
            attempt_timeout=(
                config["ATTEMPT_TIMEOUT"]
                if conf.is_duration(config.get("ATTEMPT_TIMEOUT"))
                else None
            ),
            supports_vision=(
                config["SUPPORTS_VISION"]
                if isinstance(config.get("SUPPORTS_VISION"), bool)
                else description.supports_vision
            ),
        )

    def invalid_response(self, detail: str) -> AIInvalidResponseError:
        """The error for a provider reply that cannot be used."""
        return AIInvalidResponseError(
            alias=self.config.alias, model_id=self.config.model_id, detail=detail
        )

    def merged_parameters(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters of a call: every layer, the call's keyword
        arguments on top."""
        reserved = RESERVED_PARAMETERS.intersection(kwargs)
        if reserved:
            raise TypeError(
                f"{', '.join(sorted(reserved))} cannot be passed as a parameter; "
                "the backend sets it."
            )
        scope = SCOPE_ARGUMENTS.intersection(kwargs)
        if scope:
            raise TypeError(
                f"{', '.join(sorted(scope))} is not a model parameter: get the "
                "backend with ai.get_chat_backend(site=..., request=...) (or "
                "get_embedding_backend) for a site's parameters and budget."
            )
        return self.parameters.values(kwargs)


def _count(value: Any, default: int) -> int:
    """A whole-number setting, or ``default`` when absent or malformed (the
    checks report a malformed one)."""
    return value if conf.is_count(value) else default


def _aliases(value: Any) -> tuple[str, ...]:
    """``CONFIG["FALLBACKS"]`` as a tuple of aliases (what is not a string
    is left out: the checks report it)."""
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        return ()
    return tuple(alias for alias in value if isinstance(alias, str) and alias)


def _optional_bool(value: Any) -> bool | None:
    """``None`` for an absent setting, else its truth value."""
    return None if value is None else bool(value)


def validate_messages(messages: Any) -> list[ChatMessage]:
    """Return ``messages`` as a list, or raise a clear error for bad input."""
    if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
        raise TypeError(
            'messages must be a list of {"role": ..., "content": ...} dicts, '
            f"not {type(messages).__name__}."
        )
    if not messages:
        raise ValueError("messages must contain at least one message.")
    for position, message in enumerate(messages):
        if not isinstance(message, Mapping):
            raise TypeError(
                f"messages[{position}] must be a dict, not {type(message).__name__}."
            )
        missing = [key for key in ("role", "content") if key not in message]
        if missing:
            raise ValueError(
                f"messages[{position}] has no {' or '.join(repr(k) for k in missing)}."
            )
        if not isinstance(message["role"], str) or not message["role"]:
            raise TypeError(f'messages[{position}]["role"] must be a non-empty string.')
        content = message["content"]
        if isinstance(content, list):
            _validate_parts(position, content)
        elif not isinstance(content, str):
            raise TypeError(
                f'messages[{position}]["content"] must be a string or a list of '
                f"parts, not {type(content).__name__}."
            )
    return list(messages)


def _validate_parts(position: int, parts: list[Any]) -> None:
    """A message's content as a list of text and image parts (LiteLLM's
    image input)."""
    where = f'messages[{position}]["content"]'
    if not parts:
        raise ValueError(f"{where} must contain at least one part.")
    for number, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text" and isinstance(part.get("text"), str):
            continue
        if kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, Mapping) else image
            if isinstance(url, str) and url:
                continue
        raise TypeError(
            f'{where}[{number}] must be {{"type": "text", "text": str}} or '
            '{"type": "image_url", "image_url": {"url": str}}.'
        )


def validate_inputs(inputs: Any) -> list[str]:
    """Return embedding ``inputs`` as a list of strings, or raise a clear error."""
    if isinstance(inputs, (str, bytes)):
        raise TypeError(
            "inputs must be a list of strings, not a single string; "
            "wrap it in a list: embed([text])."
        )
    if not isinstance(inputs, Sequence):
        try:
            inputs = list(inputs)
        except TypeError:
            raise TypeError(
                f"inputs must be a list of strings, not {type(inputs).__name__}."
            ) from None
    for position, text in enumerate(inputs):
        if not isinstance(text, str):
            raise TypeError(
                f"inputs[{position}] must be a string, not {type(text).__name__}."
            )
    return list(inputs)


def _peeked(response: AIStreamingResponse) -> AIStreamingResponse:
    """``response`` with its first part already read, so that a failure
    before the first token is raised here (where it can be retried), and
    one after it reaches the reader."""
    parts = iter(response._parts or ())
    try:
        first = next(parts)
    except StopIteration:
        response._parts = iter(())
        return response
    except BaseException:
        response.close()
        raise

    def rest() -> Iterator[StreamPart]:
        try:
            yield first
            yield from parts
        finally:
            close = getattr(parts, "close", None)
            if close is not None:
                close()

    response._parts = rest()
    return response


async def _apeeked(response: AIStreamingResponse) -> AIStreamingResponse:
    """:func:`_peeked` for an asynchronous stream."""
    parts = aiter(response._aparts) if response._aparts is not None else None
    if parts is None:
        return response
    try:
        first = await anext(parts)
    except StopAsyncIteration:
        return response
    except BaseException:
        await response.aclose()
        raise

    async def rest() -> AsyncIterator[StreamPart]:
        try:
            yield first
            async for part in parts:
                yield part
        finally:
            aclose = getattr(parts, "aclose", None)
            if aclose is not None:
                await aclose()

    response._aparts = rest()
    return response


class BaseChatBackend(BaseBackend):
    """A backend that answers conversations."""

    kind = "chat"

    def chat(
        self, *, messages: Sequence[ChatMessage], stream: bool = False, **kwargs: Any
    ) -> AIResponse | AIStreamingResponse:
        """Answer ``messages``; with ``stream=True`` return the answer in parts.

        A retryable failure is retried (``CONFIG["MAX_RETRIES"]``), then the
        aliases of ``CONFIG["FALLBACKS"]`` are tried; a stream only until its
        first part is read. ``response.alias`` names the alias that answered.
        """
        messages = validate_messages(messages)
        self._check_images(messages)
        call = self._begin_chat(messages, self.merged_parameters(kwargs), stream)

        def request(attempt: resilience.Attempt) -> Any:
            backend = attempt.backend
            with usage.recording():
                if stream:
                    return _peeked(backend._chat_stream(messages, attempt.parameters))
                return backend._chat(messages, attempt.parameters)

        if call is not None:
            call.start()
        attempts = usage.Recording()
        try:
            response, attempt = resilience.run(self, request, kwargs, attempts)
        except Exception as error:
            if call is not None:
                call.record_attempts(attempts)
                call.failed(error)
            raise
        backend = attempt.backend
        response.alias = backend.alias
        if call is None:
            return response
        call.record_attempts(attempts)
        if stream:
            return backend._recorded_stream(response, call, messages)
        call.succeeded(**backend._chat_usage(response, messages))
        return response

    async def achat(
        self, *, messages: Sequence[ChatMessage], stream: bool = False, **kwargs: Any
    ) -> AIResponse | AIStreamingResponse:
        """Asynchronous :meth:`chat`; a stream is read with ``async for``."""
        messages = validate_messages(messages)
        self._check_images(messages)
        call = self._begin_chat(messages, self.merged_parameters(kwargs), stream)

        async def request(attempt: resilience.Attempt) -> Any:
            backend = attempt.backend
            with usage.recording():
                if stream:
                    return await _apeeked(
                        await backend._achat_stream(messages, attempt.parameters)
                    )
                return await backend._achat(messages, attempt.parameters)

        if call is not None:
            # The ledger is a database: its work runs in a thread, never on
            # the event loop's.
            await usage.run_sync(call.start)
        attempts = usage.Recording()
        try:
            response, attempt = await resilience.arun(self, request, kwargs, attempts)
        except Exception as error:
            if call is not None:
                await usage.finish_async(call.record_attempts, attempts)
                await usage.finish_async(call.failed, error)
            raise
        backend = attempt.backend
        response.alias = backend.alias
        if call is None:
            return response
        await usage.finish_async(call.record_attempts, attempts)
        if stream:
            return backend._arecorded_stream(response, call, messages)
        await usage.finish_async(
            call.succeeded, **backend._chat_usage(response, messages)
        )
        return response

    def _check_images(self, messages: list[ChatMessage]) -> None:
        """Refuse, before any request, images for a model known not to take
        them (``CONFIG["SUPPORTS_VISION"]`` or LiteLLM's model map)."""
        if self.config.supports_vision is False and any(
            image_parts(m["content"]) for m in messages
        ):
            raise AIVisionNotSupportedError(
                self.config.alias, self.config.model_id, known=True
            )

    # -- usage ----------------------------------------------------------------

    def _smallest_request(self) -> None:
        limit = {"max_tokens": 1} if self.supports_parameter("max_tokens") else {}
        self.chat(messages=[{"role": "user", "content": "Hi"}], **limit)

    def estimate_prompt_tokens(self, messages: Sequence[ChatMessage]) -> int:
        """A cheap estimate of the prompt's tokens (about four characters a
        token, plus a few per message and :data:`IMAGE_PART_TOKENS` an
        image), for budget reservations."""
        return sum(
            len(message_text(m["content"])) // 4
            + 4
            + IMAGE_PART_TOKENS * len(image_parts(m["content"]))
            for m in messages
        )

    def estimate_chat_cost(
        self, prompt_tokens: int, completion_tokens: int
    ) -> float | None:
        """US dollars for a call of these token counts, ``None`` if unknown."""
        return 0.0 if self.offline else None

    def _begin_chat(
        self, messages: list[ChatMessage], parameters: dict, stream: bool
    ) -> usage.UsageCall | None:
        def estimate() -> tuple[int, float | None]:
            prompt = self.estimate_prompt_tokens(messages)
            limit = parameters.get("max_completion_tokens") or parameters.get(
                "max_tokens"
            )
            completion = limit if isinstance(limit, int) and limit > 0 else 0
            return prompt + completion, self.estimate_chat_cost(prompt, completion)

        return usage.begin(
            self,
            conf.CHAT,
            input_count=len(messages),
            streamed=stream,
            prompt=lambda: usage.describe_messages(messages),
            estimate=estimate,
        )

    def _chat_usage(
        self, response: AIResponse, messages: list[ChatMessage]
    ) -> dict[str, Any]:
        tokens = response.usage
        return {
            "prompt_tokens": tokens.prompt_tokens,
            "completion_tokens": tokens.completion_tokens,
            "cost": response.cost,
            "response": lambda: response.text,
        }

    def _stream_usage(
        self, response: AIStreamingResponse, messages: list[ChatMessage], chars: int
    ) -> dict[str, Any]:
        """Tokens and cost of a stream: as reported, else estimated (a
        stream stopped early often ends before the provider says)."""
        prompt = response.usage.prompt_tokens
        completion = response.usage.completion_tokens
        cost = response.cost
        if prompt is None:
            prompt = self.estimate_prompt_tokens(messages)
        if completion is None:
            completion = (chars + 3) // 4
        if cost is None:
            cost = self.estimate_chat_cost(prompt, completion)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "cost": cost,
            "time_to_first_token": response.time_to_first_token,
        }

    def _stream_recorder(
        self,
        response: AIStreamingResponse,
        call: usage.UsageCall,
        messages: list[ChatMessage],
    ) -> _StreamRecorder:
        return _StreamRecorder(
            self,
            call,
            messages,
            response.state,
            bool(conf.get_usage_settings().get("STORE_PROMPTS")),
        )

    def _recorded_stream(
        self,
        response: AIStreamingResponse,
        call: usage.UsageCall,
        messages: list[ChatMessage],
    ) -> AIStreamingResponse:
        """``response``, recorded when it ends, fails, or is closed before its
        end (then as stopped early), or when the last reference to it is
        dropped, read or not (by reference counting: nothing here refers
        back to the response, so no cycle waits for the garbage collector)."""
        inner = response._parts
        recorder = self._stream_recorder(response, call, messages)

        def parts() -> Iterator[StreamPart]:
            try:
                for part in inner or ():
                    recorder.saw(part)
                    yield part
            except GeneratorExit:
                recorder.finish(stopped=True)
                raise
            except Exception as error:
                recorder.finish(error=error)
                raise
            finally:
                if hasattr(inner, "close"):
                    inner.close()  # type: ignore[union-attr]
            recorder.finish()

        close = response._close

        def recorded_close() -> None:
            try:
                if close is not None:
                    close()
            finally:
                recorder.finish(stopped=True)

        response._parts = parts()
        response._close = recorded_close
        _on_drop(response, recorder.dropped, close)
        return response

    def _arecorded_stream(
        self,
        response: AIStreamingResponse,
        call: usage.UsageCall,
        messages: list[ChatMessage],
    ) -> AIStreamingResponse:
        """:meth:`_recorded_stream` for an asynchronous stream."""
        inner = response._aparts
        recorder = self._stream_recorder(response, call, messages)

        async def parts() -> AsyncIterator[StreamPart]:
            try:
                async for part in inner:  # type: ignore[union-attr]
                    recorder.saw(part)
                    yield part
            except GeneratorExit:
                await recorder.afinish(stopped=True)
                raise
            except Exception as error:
                await recorder.afinish(error=error)
                raise
            finally:
                if hasattr(inner, "aclose"):
                    await inner.aclose()  # type: ignore[union-attr]
            await recorder.afinish()

        aclose = response._aclose

        async def recorded_aclose() -> None:
            try:
                if aclose is not None:
                    await aclose()
            finally:
                await recorder.afinish(stopped=True)

        response._aparts = parts()
        response._aclose = recorded_aclose
        _on_drop(response, recorder.adropped)
        return response

    def _chat(self, messages: list[ChatMessage], parameters: dict) -> AIResponse:
        raise NotImplementedError

    def _chat_stream(
        self, messages: list[ChatMessage], parameters: dict
    ) -> AIStreamingResponse:
        raise NotImplementedError

    async def _achat(self, messages: list[ChatMessage], parameters: dict) -> AIResponse:
        raise NotImplementedError

    async def _achat_stream(
        self, messages: list[ChatMessage], parameters: dict
    ) -> AIStreamingResponse:
        raise NotImplementedError


def _on_drop(
    response: AIStreamingResponse, callback: Callable[..., Any], *args: Any
) -> None:
    """Call ``callback(*args)`` when ``response`` is freed. Not at the
    interpreter's exit: the ledger's writer has stopped by then."""
    weakref.finalize(response, callback, *args).atexit = False


#: Recordings of dropped asynchronous streams in flight (a task must be
#: referred to until it ends).
_dropped_tasks: set[asyncio.Task[Any]] = set()


class _StreamRecorder:
    """Records one stream's call: what was read, and the ledger row when the
    stream ends, fails, is closed or is dropped. It refers to the stream's
    :class:`StreamState`, never to the response, so that the response can
    be freed by reference counting."""

    def __init__(
        self,
        backend: BaseChatBackend,
        call: usage.UsageCall,
        messages: list[ChatMessage],
        state: Any,
        store: bool,
    ) -> None:
        self.backend = backend
        self.call = call
        self.messages = messages
        self.state = state
        self.store = store
        self.texts: list[str] = []
        self.chars = 0

    def saw(self, part: StreamPart) -> None:
        self.chars += len(part["content"])
        if self.store and part["index"] == 0:
            self.texts.append(part["content"])

    def _values(self) -> dict[str, Any]:
        return self.backend._stream_usage(self.state, self.messages, self.chars)

    def finish(self, *, stopped: bool = False, error: Exception | None = None) -> None:
        if self.call.finished:
            return
        if error is not None:
            self.call.failed(error, **self._values())
        else:
            texts = self.texts
            self.call.succeeded(
                **self._values(),
                stopped_early=stopped,
                response=lambda: "".join(texts),
            )

    async def afinish(
        self, *, stopped: bool = False, error: Exception | None = None
    ) -> None:
        if self.call.finished:
            return
        if error is not None:
            await usage.finish_async(self.call.failed, error, **self._values())
        else:
            texts = self.texts
            await usage.finish_async(
                self.call.succeeded,
                **self._values(),
                stopped_early=stopped,
                response=lambda: "".join(texts),
            )

    def dropped(self, close: Callable[[], Any] | None) -> None:
        """The response was freed: end the provider call (a stream never
        read still holds its connection) and record it as stopped early;
        nothing happens for a stream already recorded."""
        if self.call.finished:
            return
        try:
            if close is not None:
                close()
        except Exception:
            logger.debug("Closing a dropped stream failed", exc_info=True)
        self.finish(stopped=True)

    def adropped(self) -> None:
        """:meth:`dropped` for an asynchronous stream (its provider call is
        ended by asyncio, which closes the dropped generators)."""
        if self.call.finished:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None and not usage.writes_in_background():
            # Written in the caller's thread (tests in a transaction): the
            # ledger's database work must not run on the event loop.
            task = loop.create_task(self.afinish(stopped=True))
            _dropped_tasks.add(task)
            task.add_done_callback(_dropped_tasks.discard)
        else:
            self.finish(stopped=True)


class BaseEmbeddingBackend(BaseBackend):
    """A backend that turns texts into vectors."""

    kind = "embedding"
    #: Whether calls take vectors from the embedding cache (see
    #: :meth:`with_cache`).
    use_cache: bool = False

    def with_cache(self) -> BaseEmbeddingBackend:
        """A copy of this backend whose :meth:`embed`, :meth:`aembed`,
        :meth:`embed_matrix` and :meth:`aembed_matrix` take the vectors of
        texts already embedded with this model and dimensions from the
        embedding cache (:mod:`wagtail_vector_index.embedding_cache`) and send
        only the others, each once, to the provider, then keep their vectors
        there. Results are in input order; the usage ledger records the one
        call for the texts sent (none when every text was cached). Nothing
        changes when ``EMBEDDING_CACHE["ENABLED"]`` is off or the backend is
        offline."""
        backend = copy.copy(self)
        backend.use_cache = True
        return backend

    def _from_cache(self, inputs: Any, kwargs: dict[str, Any]) -> np.ndarray | None:
        """The vectors of ``inputs`` through the cache, or ``None`` when this
        call does not use it."""
        if not self.use_cache:
            return None
        # (Refused parameters fail here, before any lookup.)
        cache = embedding_cache.for_backend(self, self.merged_parameters(kwargs))
        if cache is None:
            return None
        inputs = validate_inputs(inputs)
        direct = copy.copy(self)
        direct.use_cache = False
        return embedding_cache.embed_through(
            cache, inputs, lambda texts: direct.embed_matrix(texts, **kwargs)
        )

    async def _afrom_cache(
        self, inputs: Any, kwargs: dict[str, Any]
    ) -> np.ndarray | None:
        """:meth:`_from_cache` for the asynchronous methods."""
        if not self.use_cache:
            return None
        cache = embedding_cache.for_backend(self, self.merged_parameters(kwargs))
        if cache is None:
            return None
        inputs = validate_inputs(inputs)
        direct = copy.copy(self)
        direct.use_cache = False

        async def embed(texts: list[str]) -> np.ndarray:
            return await direct.aembed_matrix(texts, **kwargs)

        return await embedding_cache.aembed_through(cache, inputs, embed)

    @property
    def embedding_output_dimensions(self) -> int:
        return self.config.embedding_output_dimensions  # type: ignore[return-value]

    def can_fall_back_to(self, other: BaseBackend) -> bool:
        """Only a backend of the same model and dimensions: vectors from
        another model live in another space, and one index must never mix
        them."""
        return (
            super().can_fall_back_to(other)
            and other.config.model_id == self.config.model_id
            and other.config.embedding_output_dimensions
            == self.config.embedding_output_dimensions
        )

    def _smallest_request(self) -> None:
        self.embed_matrix(["Hi"])

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` (subclasses use the model's tokenizer)."""
        # A byte-level tokenizer never makes more tokens than bytes.
        return len(text.encode())

    def estimate_cost(self, tokens: int) -> float | None:
        """US dollars to embed ``tokens`` tokens, or ``None`` if unknown."""
        return 0.0 if self.offline else None

    def encode(self, text: str) -> list[Any]:
        """``text`` as a list of tokens, for chunking (words with their
        trailing space here; subclasses use the model's tokenizer)."""
        return _TOKEN.findall(text)

    def decode(self, tokens: list[Any]) -> str:
        """The text of ``tokens`` from :meth:`encode`."""
        return "".join(tokens)

    def batches(self, inputs: list[str]) -> list[list[str]]:
        """Split ``inputs`` into requests within the provider's limits.

        A batch holds at most ``config.batch_size`` inputs and at most
        ``config.batch_token_limit`` tokens. Tokens are counted only when the
        byte length of a text could exceed what is left in the batch, since
        byte length bounds the token count from above.
        """
        size, token_budget = self.config.batch_size, self.config.batch_token_limit
        batches: list[list[str]] = []
        current: list[str] = []
        used = 0
        for text in inputs:
            cost = len(text.encode())
            if cost > token_budget - used:
                cost = self.count_tokens(text)
            if current and (len(current) >= size or used + cost > token_budget):
                batches.append(current)
                current, used = [], 0
            current.append(text)
            used += cost
        if current:
            batches.append(current)
        return batches

    def _checked_values(self, vectors: Any, expected: int) -> np.ndarray:
        """``vectors`` as one float32 array of shape ``(expected, dimensions)``
        if they are ``expected`` vectors of the backend's dimensions holding
        finite numbers; else :class:`AIInvalidResponseError`."""
        import numpy as np

        dimensions = self.embedding_output_dimensions
        if isinstance(vectors, np.ndarray) and vectors.ndim == 2:
            # A decoded matrix (base64 replies): its shape says it all.
            count, length = vectors.shape
            if count != expected:
                raise self._wrong_count(expected, count)
            if count and length != dimensions:
                raise self._wrong_dimensions(0, length)
            values = vectors
        else:
            if not isinstance(vectors, Sequence) or len(vectors) != expected:
                count = len(vectors) if isinstance(vectors, Sequence) else _("none")
                raise self._wrong_count(expected, count)
            for position, vector in enumerate(vectors):
                if isinstance(vector, np.ndarray) and vector.ndim != 1:
                    vector = None
                if not isinstance(vector, (Sequence, np.ndarray)) or isinstance(
                    vector, (str, bytes)
                ):
                    raise self.invalid_response(
                        _("vector %(position)s is missing") % {"position": position}
                    )
                if len(vector) != dimensions:
                    raise self._wrong_dimensions(position, len(vector))
            # One conversion checks the types of all values at C speed: None or
            # a string makes an object or text array, never a float one.
            try:
                values = np.asarray(vectors) if vectors else np.empty((0, dimensions))
            except (TypeError, ValueError):  # Nested lists, ragged inside.
                values = np.asarray([], dtype=object)
        if (
            values.dtype.kind not in "fiu"
            or values.dtype == np.bool_
            or values.ndim != 2
        ):
            raise self.invalid_response(_("a vector holds values that are not numbers"))
        # float32 is what every storage keeps; a value beyond its range would
        # become infinite there, so it is checked after the conversion.
        with np.errstate(over="ignore"):
            values = values.astype(np.float32, copy=False)
        if not np.isfinite(values).all():
            raise self.invalid_response(_("a vector holds NaN or infinite values"))
        return values

    def _wrong_count(self, expected: int, count: Any) -> AIInvalidResponseError:
        return self.invalid_response(
            _("expected %(expected)s vectors, got %(count)s")
            % {"expected": expected, "count": count}
        )

    def _wrong_dimensions(self, position: int, length: int) -> AIInvalidResponseError:
        message = _("vector %(position)s: %(length)s dimensions, not %(dimensions)s")
        return self.invalid_response(
            message
            % {
                "position": position,
                "length": length,
                "dimensions": self.embedding_output_dimensions,
            }
        )

    def check_vectors(self, vectors: Any, expected: int) -> list[list[float]]:
        """``vectors`` if they are ``expected`` vectors of the backend's
        dimensions holding finite numbers; else :class:`AIInvalidResponseError`.

        Every reply passes through here (or :meth:`check_matrix`) before
        anything uses or stores it: one short vector, a NaN or a string would
        otherwise end up in an index and break it. A decoded matrix comes back
        as lists of its float32 values.
        """
        return self._as_lists(vectors, self._checked_values(vectors, expected))

    def _checked_pair(self, vectors: Any, expected: int) -> tuple[Any, np.ndarray]:
        """The check of :meth:`check_vectors` without its conversion to lists
        (``aembed`` converts after the request has left its slot)."""
        return vectors, self._checked_values(vectors, expected)

    @staticmethod
    def _as_lists(vectors: Any, values: np.ndarray) -> list[list[float]]:
        """Checked ``vectors`` as lists: a decoded matrix's float32 values, or
        the numbers the provider sent."""
        import numpy as np

        if isinstance(vectors, np.ndarray):
            return values.tolist()
        return [v.tolist() if isinstance(v, np.ndarray) else v for v in vectors]

    def check_matrix(self, vectors: Any, expected: int) -> np.ndarray:
        """:meth:`check_vectors`, returning one ``(expected, dimensions)``
        float32 array."""
        return self._checked_values(vectors, expected)

    def embed(self, inputs: Sequence[str], **kwargs: Any) -> Iterator[list[float]]:
        """Vectors for ``inputs``, in input order."""
        if (cached := self._from_cache(inputs, kwargs)) is not None:
            return iter(cached.tolist())
        inputs = validate_inputs(inputs)
        self.merged_parameters(kwargs)  # Refuses reserved names at once.
        if not inputs:
            return iter(())

        def work() -> list[list[float]]:
            deadline = resilience.call_deadline(self, kwargs)
            vectors: list[list[float]] = []
            for batch in self.batches(inputs):
                vectors.extend(
                    self._request_batch(batch, kwargs, "check_vectors", deadline)
                )
            return vectors

        return iter(self._recorded(inputs, work))

    async def aembed(self, inputs: Sequence[str], **kwargs: Any) -> list[list[float]]:
        """Vectors for ``inputs`` in input order, batches sent concurrently.

        At most ``config.max_concurrency`` requests are in flight at once.
        """
        if (cached := await self._afrom_cache(inputs, kwargs)) is not None:
            return cached.tolist()
        inputs = validate_inputs(inputs)
        self.merged_parameters(kwargs)  # Refuses reserved names at once.
        if not inputs:
            return []
        results = await self._arecorded(
            inputs,
            lambda: self._gather_batches(
                inputs, kwargs, "_checked_pair", lambda pair: self._as_lists(*pair)
            ),
        )
        return [vector for batch in results for vector in batch]

    def embed_matrix(self, inputs: Sequence[str], **kwargs: Any) -> np.ndarray:
        """Vectors for ``inputs`` as one ``(len(inputs), dimensions)`` float32
        array, rows in input order: :meth:`embed` without Python lists.

        Batched and checked as :meth:`embed` is. A backend class that
        overrides :meth:`embed` itself (rather than ``_embed_batch``) gets
        its vectors from that method, converted.
        """
        if (cached := self._from_cache(inputs, kwargs)) is not None:
            return cached
        inputs = validate_inputs(inputs)
        if _overrides(self, "embed"):
            return self._recorded(
                inputs, lambda: self._as_matrix(list(self.embed(inputs, **kwargs)))
            )
        self.merged_parameters(kwargs)  # Refuses reserved names at once.
        if not inputs:
            return self._joined([])

        def work() -> np.ndarray:
            deadline = resilience.call_deadline(self, kwargs)
            return self._joined(
                [
                    self._request_batch(batch, kwargs, "check_matrix", deadline)
                    for batch in self.batches(inputs)
                ]
            )

        return self._recorded(inputs, work)

    async def aembed_matrix(self, inputs: Sequence[str], **kwargs: Any) -> np.ndarray:
        """Asynchronous :meth:`embed_matrix`; batches sent concurrently as
        :meth:`aembed` sends them."""
        if (cached := await self._afrom_cache(inputs, kwargs)) is not None:
            return cached
        inputs = validate_inputs(inputs)
        if _overrides(self, "aembed"):

            async def overridden() -> np.ndarray:
                return self._as_matrix(await self.aembed(inputs, **kwargs))

            return await self._arecorded(inputs, overridden)
        self.merged_parameters(kwargs)  # Refuses reserved names at once.
        if not inputs:
            return self._joined([])

        async def work() -> np.ndarray:
            return self._joined(
                await self._gather_batches(inputs, kwargs, "check_matrix")
            )

        return await self._arecorded(inputs, work)

    # -- usage ----------------------------------------------------------------

    def _begin_embedding(self, inputs: list[str]) -> usage.UsageCall | None:
        def estimate() -> tuple[int, float | None]:
            tokens = sum(self.count_tokens(text) for text in inputs)
            return tokens, self.estimate_cost(tokens)

        return usage.begin(
            self,
            conf.EMBEDDING,
            input_count=len(inputs),
            prompt=lambda: "\n\n".join(inputs),
            estimate=estimate,
        )

    def _embedding_usage(
        self, inputs: list[str], reported: usage.Recording, succeeded: bool
    ) -> dict[str, Any]:
        """Tokens the provider reported for the batches; where it reported
        none, the tokenizer's count (a failed call: what was reported)."""
        if reported.tokens:
            tokens = sum(reported.tokens)
        elif succeeded:
            tokens = sum(self.count_tokens(text) for text in inputs)
        else:
            tokens = 0
        return {
            "prompt_tokens": tokens,
            "completion_tokens": 0,
            "cost": self.estimate_cost(tokens),
        }

    def deferred_embedding(self, inputs: Sequence[str]) -> DeferredEmbedding:
        """One recorded :meth:`embed_matrix` call whose request may run in
        another thread (see :class:`DeferredEmbedding`)."""
        return DeferredEmbedding(self, validate_inputs(inputs))

    def _recorded(self, inputs: list[str], work: Callable[[], Any]) -> Any:
        """``work()``, recorded as one embedding call of ``inputs``."""
        call = self._begin_embedding(inputs)
        if call is None:
            return work()
        call.start()
        with usage.recording() as reported:
            try:
                result = work()
            except Exception as error:
                call.record_attempts(reported)
                call.failed(error, **self._embedding_usage(inputs, reported, False))
                raise
        call.record_attempts(reported)
        call.succeeded(**self._embedding_usage(inputs, reported, True))
        return result

    async def _arecorded(self, inputs: list[str], work: Callable[[], Any]) -> Any:
        """:meth:`_recorded` for a coroutine function."""
        call = self._begin_embedding(inputs)
        if call is None:
            return await work()
        await usage.run_sync(call.start)
        with usage.recording() as reported:
            try:
                result = await work()
            except Exception as error:
                values = self._embedding_usage(inputs, reported, False)
                await usage.finish_async(call.record_attempts, reported)
                await usage.finish_async(call.failed, error, **values)
                raise
        await usage.finish_async(call.record_attempts, reported)
        await usage.finish_async(
            call.succeeded, **self._embedding_usage(inputs, reported, True)
        )
        return result

    def _request_batch(
        self,
        batch: list[str],
        kwargs: dict,
        check: str,
        deadline: float | None = None,
    ) -> Any:
        """One batch's checked vectors (``check``: :meth:`check_vectors` or
        :meth:`check_matrix`), retried and passed to the fallbacks as
        :mod:`~wagtail_vector_index.resilience` says, within the call's
        ``deadline`` (shared by its batches)."""

        def request(attempt: resilience.Attempt) -> Any:
            backend = attempt.backend
            vectors = backend._embed_batch(batch, attempt.parameters)
            return getattr(backend, check)(vectors, len(batch))

        vectors, _attempt = resilience.run(
            self, request, kwargs, usage.current_recording(), deadline
        )
        return vectors

    async def _gather_batches(
        self,
        inputs: list[str],
        kwargs: dict,
        check: str,
        finish: Callable[[Any], Any] | None = None,
    ) -> list[Any]:
        """The checked vectors of every batch (see :meth:`_request_batch`),
        sent concurrently (at most ``config.max_concurrency`` at once), in
        input order; ``finish`` turns each batch's checked result into what
        is returned once its request has left its slot, so that the next
        request is already on its way meanwhile. The batches share the
        call's deadline (its ``timeout``), waiting for a slot included."""
        semaphore = asyncio.Semaphore(self.config.max_concurrency)
        observer = usage.current_recording()
        deadline = resilience.call_deadline(self, kwargs)

        async def request(attempt: resilience.Attempt, batch: list[str]) -> Any:
            backend = attempt.backend
            vectors = await backend._aembed_batch(batch, attempt.parameters)
            return getattr(backend, check)(vectors, len(batch))

        async def run(batch: list[str]) -> Any:
            async with semaphore:
                vectors, _attempt = await resilience.arun(
                    self,
                    lambda attempt: request(attempt, batch),
                    kwargs,
                    observer,
                    deadline,
                )
            return vectors if finish is None else finish(vectors)

        tasks = [asyncio.ensure_future(run(b)) for b in self.batches(inputs)]
        try:
            return await asyncio.gather(*tasks)
        except BaseException:
            # One failed batch fails the call: stop paying for the others.
            for task in tasks:
                task.cancel()
            raise

    def _joined(self, matrices: list[np.ndarray]) -> np.ndarray:
        import numpy as np

        if not matrices:
            return np.empty((0, self.embedding_output_dimensions), dtype=np.float32)
        if len(matrices) == 1:
            return matrices[0]
        return np.concatenate(matrices)

    def _as_matrix(self, vectors: list[Any]) -> np.ndarray:
        """Vectors from an overridden :meth:`embed` as a float32 matrix (what
        they hold is that method's business, and the storages check it)."""
        import numpy as np

        if not vectors:
            return self._joined([])
        return np.asarray(vectors, dtype=np.float32)

    def _embed_batch(
        self, batch: list[str], parameters: dict
    ) -> list[list[float]] | np.ndarray:
        """The provider's vectors for ``batch``: lists of numbers, or a 2-D
        array; :meth:`check_vectors` / :meth:`check_matrix` check them."""
        raise NotImplementedError

    async def _aembed_batch(
        self, batch: list[str], parameters: dict
    ) -> list[list[float]] | np.ndarray:
        raise NotImplementedError


class DeferredEmbedding:
    """An :meth:`~BaseEmbeddingBackend.embed_matrix` call split in three, so
    that its request can run in a worker thread while the database work of
    the usage ledger (the budget check before, the record after) stays in
    the caller's thread: :meth:`start` (may raise ``AIBudgetExceededError``),
    :meth:`run` (any thread; the request only), then :meth:`finish` or
    :meth:`fail`. The index update uses it to overlap requests with writes.
    """

    def __init__(self, backend: BaseEmbeddingBackend, inputs: list[str]) -> None:
        self.backend = backend
        self.inputs = inputs
        self.reported = usage.Recording()
        self._call = backend._begin_embedding(inputs)

    def start(self) -> None:
        if self._call is not None:
            self._call.start()

    def run(self) -> np.ndarray:
        """The vectors (nothing recorded here: :meth:`finish` does)."""
        with usage.recording() as reported:
            self.reported = reported
            return self.backend.embed_matrix(self.inputs)

    def finish(self) -> None:
        if self._call is not None:
            self._call.record_attempts(self.reported)
            usage_values = self.backend._embedding_usage(
                self.inputs, self.reported, True
            )
            self._call.succeeded(**usage_values)

    def fail(self, error: BaseException) -> None:
        if self._call is not None:
            self._call.record_attempts(self.reported)
            usage_values = self.backend._embedding_usage(
                self.inputs, self.reported, False
            )
            self._call.failed(error, **usage_values)


def _overrides(backend: BaseEmbeddingBackend, name: str) -> bool:
    """Whether ``backend``'s class replaces the base class's method ``name``."""
    return getattr(type(backend), name) is not getattr(BaseEmbeddingBackend, name)
