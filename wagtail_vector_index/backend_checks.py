"""What the admin's "AI backends" page and ``manage.py check_ai_backends``
say about each configured alias, and the connection check both run.

Describing an alias (:func:`backend_status`) sends nothing: its model, its
provider and whether the credentials are present (never their values), its
retries, fallbacks and circuit state. :func:`check_backend` sends the
smallest request the alias can make (``backend.check_connection()``) and
turns the outcome into a :class:`CheckResult` whose message is safe to show.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from wagtail_vector_index import ai, conf, resilience
from wagtail_vector_index.ai_utils.backends.base import ProviderDescription
from wagtail_vector_index.exceptions import AIBudgetExceededError, AIProviderError
from wagtail_vector_index.redaction import get_logger, redact

if TYPE_CHECKING:
    from django.http import HttpRequest

logger = get_logger(__name__)

#: The kinds of backend, in the order they are shown.
KINDS = (conf.CHAT, conf.EMBEDDING)

#: What an alias whose settings cannot be used shows instead of a check.
MISCONFIGURED = _("Misconfigured: run manage.py check to see why.")
#: What a check that failed in an unforeseen way shows (the log has more).
UNEXPECTED = _(
    "Something unexpected went wrong while checking the connection. "
    "The details are in the server's logs."
)

_GETTERS: dict[str, Callable[..., Any]] = {
    conf.CHAT: ai.get_chat_backend,
    conf.EMBEDDING: ai.get_embedding_backend,
}


@dataclass(frozen=True)
class BackendStatus:
    """One configured alias as it stands, found without calling anyone."""

    kind: str
    alias: str
    #: The backend built from the settings, or ``None`` if it cannot be.
    backend: Any
    provider: ProviderDescription
    circuit: resilience.CircuitState

    @property
    def misconfigured(self) -> bool:
        return self.backend is None

    @property
    def model_id(self) -> str:
        return self.backend.config.model_id if self.backend is not None else ""

    @property
    def offline(self) -> bool:
        return bool(self.backend is not None and self.backend.offline)

    @property
    def max_retries(self) -> int | None:
        return self.backend.config.max_retries if self.backend is not None else None

    @property
    def fallbacks(self) -> tuple[str, ...]:
        return self.backend.config.fallbacks if self.backend is not None else ()


@dataclass(frozen=True)
class CheckResult:
    """The outcome of :func:`check_backend`."""

    kind: str
    alias: str
    ok: bool
    #: How long the request took (``None`` when none was answered).
    seconds: float | None = None
    #: Why the check failed, in words safe to show (no credentials).
    error: str = ""

    @property
    def milliseconds(self) -> float | None:
        return None if self.seconds is None else self.seconds * 1000


def backend_status(kind: str, alias: str) -> BackendStatus:
    """What is known of ``alias`` (of ``kind``) without sending a request."""
    backend = ai.get_configured_backend(kind, alias)
    provider = ProviderDescription()
    if backend is not None:
        try:
            provider = backend.describe_provider()
        except Exception:  # A description must never fail the page.
            logger.exception("Could not describe the provider of %r", backend)
    return BackendStatus(
        kind=kind,
        alias=alias,
        backend=backend,
        provider=provider,
        circuit=resilience.breaker_state(kind, alias),
    )


def backend_statuses(kind: str) -> list[BackendStatus]:
    """:func:`backend_status` of every alias configured for ``kind``."""
    return [backend_status(kind, alias) for alias in ai.configured_aliases(kind)]


def check_backend(
    kind: str,
    alias: str,
    *,
    request: HttpRequest | None = None,
    user_budget: bool = False,
) -> CheckResult:
    """Send the smallest request ``alias`` can make (once: no retries, no
    fallbacks, even past an open circuit) and say how it went.

    With ``request``, the request's site overrides apply and the call is
    recorded (and budgeted) under its site and user; ``user_budget`` makes
    the user's daily budget apply too (the admin's test pages do).
    """
    try:
        backend = _GETTERS[kind](alias, request=request)
    except ImproperlyConfigured:
        return CheckResult(kind, alias, ok=False, error=str(MISCONFIGURED))
    if user_budget:
        backend = backend.with_usage(user_budget=True)
    try:
        seconds = backend.check_connection()
    except (AIProviderError, AIBudgetExceededError) as error:
        # Their messages are written to be shown; hiding any credential
        # again costs nothing.
        return CheckResult(kind, alias, ok=False, error=redact(str(error)))
    except Exception:
        logger.exception("The connection check of %r failed", backend)
        return CheckResult(kind, alias, ok=False, error=_unexpected(backend))
    return CheckResult(kind, alias, ok=True, seconds=seconds)


def _unexpected(backend: Any) -> str:
    """What a check that failed unforeseen says: missing credentials are the
    likely cause when LiteLLM says some are (its client then fails before
    sending anything, with an error that names no HTTP status)."""
    try:
        missing = backend.describe_provider().missing
    except Exception:
        missing = ()
    if not missing:
        return str(UNEXPECTED)
    return gettext(
        "The check failed, and LiteLLM reports these settings missing "
        "from the environment: %(names)s."
    ) % {"names": ", ".join(missing)}


def kind_label(kind: str) -> str:
    """``"Chat"`` or ``"Embedding"``, for people."""
    if kind == conf.CHAT:
        return gettext("Chat")
    return gettext("Embedding")
