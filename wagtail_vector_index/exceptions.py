"""The project's error classes.

Provider failures are raised as subclasses of :class:`AIProviderError`. Each
carries the backend ``alias`` and ``model_id``, is chained (``__cause__``) to the
LiteLLM exception it replaces, and has a message written for an editor: it
never contains the provider's raw reply, a URL with credentials or an API key.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class WagtailVectorIndexError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidAIBackendError(ImproperlyConfigured, WagtailVectorIndexError):
    """A backend cannot be built from its settings."""

    def __init__(self, alias: str, message: str) -> None:
        self.alias = alias
        super().__init__(f'AI backend "{alias}": {message}')


class UnknownBackendAliasError(InvalidAIBackendError):
    """A backend alias that is not configured was asked for."""

    def __init__(self, alias: str, kind: str, known: list[str]) -> None:
        self.kind = kind
        self.known = known
        known_text = ", ".join(f'"{name}"' for name in known) or "none"
        super().__init__(
            alias,
            f"no {kind} backend with this alias is configured "
            f"(configured: {known_text}).",
        )


class AIProviderError(WagtailVectorIndexError):
    """A call to the model provider failed.

    ``str(error)`` is safe to show to an editor. ``error.__cause__`` keeps the
    original exception for logs.
    """

    #: What went wrong, in words for an editor; subclasses override it.
    reason = "The AI provider could not complete the request."
    #: Whether trying again later may succeed.
    retryable = False
    #: Seconds the provider asked to wait before trying again (its
    #: ``Retry-After`` header), when it said.
    retry_after: float | None = None

    def __init__(self, *, alias: str, model_id: str, detail: str | None = None) -> None:
        self.alias = alias
        self.model_id = model_id
        self.detail = detail
        message = f'{self.reason} (backend "{alias}", model "{model_id}")'
        if detail:
            message = f"{message}: {detail}"
        super().__init__(message)


class AIAuthenticationError(AIProviderError):
    reason = (
        "The AI provider rejected the credentials. Check the API key configured "
        "for this backend."
    )


class AIRateLimitError(AIProviderError):
    reason = "The AI provider is rate limiting requests. Try again shortly."
    retryable = True


class AITimeoutError(AIProviderError):
    reason = "The AI provider did not answer in time."
    retryable = True


class AIConnectionError(AIProviderError):
    reason = "The AI provider could not be reached."
    retryable = True


class AIServiceUnavailableError(AIProviderError):
    reason = "The AI provider reported an internal error or is unavailable."
    retryable = True


class AIBadRequestError(AIProviderError):
    reason = "The AI provider refused the request as invalid."


class AIContextWindowExceededError(AIBadRequestError):
    reason = "The input is too long for the model's context window."


class AIInvalidResponseError(AIProviderError):
    reason = "The AI provider sent a reply that could not be understood."
    retryable = True
