"""Retries with backoff, fallbacks across aliases, and a circuit breaker.

The backend base classes run every provider request through
:func:`run` / :func:`arun`: one request to the backend, then, while the
failure allows, the same request again after a wait, then the same request
to each alias of ``CONFIG["FALLBACKS"]`` in turn (each with its own
parameters, retries and circuit breaker).

* **Retries** (``CONFIG["MAX_RETRIES"]``, default 2): only failures that
  may pass (:attr:`AIProviderError.retryable`: rate limits, timeouts,
  connections, 5xx, unreadable replies). The wait doubles from
  :data:`BASE_DELAY` up to :data:`MAX_DELAY` with jitter (half of it random,
  so that processes failing together do not retry together), and is at
  least the provider's ``Retry-After``. The ``timeout`` parameter is the
  whole call's time, retries, waits and fallbacks included (one deadline,
  set when the call starts; an embedding call's batches share it): each
  request gets what is left of it (at most ``CONFIG["ATTEMPT_TIMEOUT"]``, so
  that a slow request can be cut and retried), a retry that would not fit
  is not made, and a fallback left without time is not tried (the call then
  raises :class:`AITimeoutError` saying so).
  Without a ``timeout``, a provider asking for more than :data:`MAX_WAIT`
  seconds is not retried.
* **Fallbacks**: after an alias's retries, or at once for a context window
  too small, credentials refused or an open circuit.
* **Circuit breaker** (``WAGTAIL_VECTOR_INDEX["CIRCUIT_BREAKER"]``), one per
  alias and process: after ``FAILURE_THRESHOLD`` retryable failures in a
  row the alias is skipped for ``COOLDOWN_SECONDS``, then one call tries it
  again (success closes it, failure opens it for another cooldown).

The clock (:data:`clock`) is one object so that tests can control time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.core.signals import setting_changed

from wagtail_vector_index import conf
from wagtail_vector_index.exceptions import (
    AIAuthenticationError,
    AICircuitOpenError,
    AIContextWindowExceededError,
    AIProviderError,
    AITimeoutError,
)
from wagtail_vector_index.i18n import gettext

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds before the first retry (doubled for each further retry).
BASE_DELAY = 0.5
#: The longest backoff between two attempts (a ``Retry-After`` may ask more).
MAX_DELAY = 8.0
#: Without a ``timeout`` parameter, the longest wait a provider's
#: ``Retry-After`` can ask for before the call gives up instead.
MAX_WAIT = 60.0
#: Seconds an attempt needs at least: a retry that would leave less of the
#: call's timeout is not made.
MIN_ATTEMPT_TIME = 0.25


class Clock:
    """Time as the retries see it (tests replace :data:`clock`)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def random(self) -> float:
        """A number in [0, 1): the jitter."""
        return random.random()  # noqa: S311 (jitter, not a secret)


clock = Clock()


# -- circuit breaker -----------------------------------------------------------

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


@dataclass(frozen=True)
class CircuitState:
    """What the admin and ``check_ai_backends`` show of an alias's breaker."""

    state: str
    #: Retryable failures in a row (reset by a success).
    failures: int
    #: Seconds until an open circuit lets one call through (else ``None``).
    retry_in: float | None
    #: The last failure's message (safe to show), or "".
    last_error: str


class CircuitBreaker:
    """One alias's breaker in this process (see the module's docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.failures = 0
        self.opened_at: float | None = None
        self.trial = False
        self.last_error = ""

    def allow(self) -> bool:
        """Whether a call may go to the provider now (an open circuit whose
        cooldown has passed lets exactly one through)."""
        threshold, cooldown = breaker_settings()
        with self._lock:
            if threshold == 0 or self.opened_at is None:
                return True
            if self.trial or clock.monotonic() - self.opened_at < cooldown:
                return False
            self.trial = True
            return True

    def success(self) -> None:
        with self._lock:
            self.failures = 0
            self.opened_at = None
            self.trial = False
            self.last_error = ""

    def failure(self, error: BaseException) -> None:
        """Count ``error`` if it says the provider is unwell (retryable);
        credentials and bad requests say nothing of its health."""
        if not getattr(error, "retryable", False):
            with self._lock:
                self.trial = False
            return
        threshold, _ = breaker_settings()
        with self._lock:
            self.failures += 1
            self.last_error = str(error)
            if threshold and (self.trial or self.failures >= threshold):
                if self.opened_at is None or self.trial:
                    logger.warning(
                        "AI backend circuit opened after %s failures in a row: %s",
                        self.failures,
                        self.last_error,
                    )
                self.opened_at = clock.monotonic()
            self.trial = False

    def release(self) -> None:
        """The call ended without a verdict on the provider (cancelled, or
        failed before reaching it): another call may try."""
        with self._lock:
            self.trial = False

    def state(self) -> CircuitState:
        _, cooldown = breaker_settings()
        with self._lock:
            if self.opened_at is None:
                return CircuitState(CLOSED, self.failures, None, self.last_error)
            left = cooldown - (clock.monotonic() - self.opened_at)
            if left <= 0 or self.trial:
                return CircuitState(HALF_OPEN, self.failures, None, self.last_error)
            return CircuitState(OPEN, self.failures, left, self.last_error)


_breakers: dict[tuple[str, str], CircuitBreaker] = {}
_breakers_lock = threading.Lock()


def breaker(kind: str, alias: str) -> CircuitBreaker:
    """The breaker of ``alias`` (of ``kind``) in this process."""
    key = (kind, alias)
    with _breakers_lock:
        found = _breakers.get(key)
        if found is None:
            found = _breakers[key] = CircuitBreaker()
        return found


def breaker_state(kind: str, alias: str) -> CircuitState:
    """The circuit state of ``alias`` (of ``kind``) in this process."""
    return breaker(kind, alias).state()


def reset_breakers() -> None:
    """Close every circuit (done when the settings change, and by tests)."""
    with _breakers_lock:
        _breakers.clear()


def breaker_settings() -> tuple[int, float]:
    """``(FAILURE_THRESHOLD, COOLDOWN_SECONDS)``; a threshold of 0 turns the
    breaker off."""
    if not settings.configured:  # Backends used in a script, without Django.
        values = conf.CIRCUIT_BREAKER_DEFAULTS
    else:
        values = conf.get_circuit_breaker_settings()
    return values["FAILURE_THRESHOLD"], float(values["COOLDOWN_SECONDS"])


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == conf.SETTING_NAME:
        reset_breakers()


setting_changed.connect(_on_setting_changed, dispatch_uid="wvi-resilience")


# -- retries and fallbacks -------------------------------------------------------


def falls_back(error: BaseException) -> bool:
    """Whether another alias may succeed where one failed with ``error``
    (after its retries): the provider is unwell, the input too long for
    the model, the alias's credentials refused, or its circuit open."""
    return isinstance(
        error,
        (AIContextWindowExceededError, AIAuthenticationError, AICircuitOpenError),
    ) or (isinstance(error, AIProviderError) and error.retryable)


def backoff(retry: int, error: BaseException) -> float:
    """Seconds to wait before retry number ``retry`` (1 for the first)."""
    delay = min(MAX_DELAY, BASE_DELAY * 2 ** (retry - 1))
    delay = delay / 2 + clock.random() * delay / 2
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return delay


@dataclass
class Attempt:
    """One request about to be made: to ``backend`` with ``parameters``
    (``timeout`` lowered to what is left of the call's), the ``number``
    th request of the call (retries and fallbacks count up)."""

    backend: Any
    parameters: dict[str, Any]
    number: int


def _timeout(parameters: dict[str, Any]) -> float | None:
    """The ``timeout`` parameter in seconds, if it is one (else ``None``)."""
    timeout = parameters.get("timeout")
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        return float(timeout) if timeout > 0 else None
    return None


def _deadline(parameters: dict[str, Any]) -> float | None:
    timeout = _timeout(parameters)
    return clock.monotonic() + timeout if timeout is not None else None


def _earliest(*deadlines: float | None) -> float | None:
    known = [deadline for deadline in deadlines if deadline is not None]
    return min(known) if known else None


def call_deadline(backend: Any, call_kwargs: dict[str, Any]) -> float | None:
    """When a call of ``backend`` with ``call_kwargs`` must be over: now plus
    its ``timeout`` parameter (``None``: no timeout). A call that makes
    several requests of its own (the batches of an embedding call) takes
    this once and hands it to each :func:`run` / :func:`arun`."""
    return _deadline(backend.merged_parameters(call_kwargs))


def _with_time_left(
    parameters: dict[str, Any], deadline: float | None, cap: float | None
) -> dict[str, Any]:
    """``parameters`` whose ``timeout`` is what one request may take: what is
    left of the call's, and at most ``cap`` (``CONFIG["ATTEMPT_TIMEOUT"]``)."""
    limits = [cap] if cap is not None else []
    if deadline is not None:
        limits.append(max(deadline - clock.monotonic(), 0.001))
    if not limits:
        return parameters
    return {**parameters, "timeout": min(limits)}


class _Plan:
    """The bookkeeping of one call's attempts, shared by :func:`run` and
    :func:`arun`."""

    def __init__(
        self,
        backend: Any,
        call_kwargs: dict[str, Any],
        observer: Any,
        deadline: float | None = None,
    ) -> None:
        self.backend = backend
        self.chain = backend.resilience_chain()
        self.call_kwargs = call_kwargs
        self.observer = observer
        #: One deadline for the whole call: every retry and fallback gets
        #: what is left of it.
        self.timeout = _timeout(backend.merged_parameters(call_kwargs))
        if deadline is None and self.timeout is not None:
            deadline = clock.monotonic() + self.timeout
        self.deadline = deadline
        self.number = 0
        self.error: BaseException | None = None
        #: Aliases not tried because no time was left for them.
        self.skipped: list[str] = []
        #: The last failure, reported once another attempt follows it (the
        #: one raised in the end is the caller's to record).
        self.pending: tuple[Attempt, BaseException] | None = None

    def time_left(self) -> bool:
        """Whether another request may start before the call's deadline: the
        call's first needs some time left, any later one at least
        :data:`MIN_ATTEMPT_TIME`."""
        if self.deadline is None:
            return True
        left = self.deadline - clock.monotonic()
        return left >= MIN_ATTEMPT_TIME if self.number else left > 0

    def targets(self) -> Any:
        """For each backend of the chain whose circuit lets it through and
        for which time is left: ``(backend, breaker, parameters,
        deadline)``. ``deadline`` is the call's, or sooner when the
        backend's own ``timeout`` parameter (a fallback's) ends sooner."""
        for backend in self.chain:
            if not self.time_left():
                self.skipped.append(backend.alias)
                continue
            circuit = breaker(backend.kind, backend.alias)
            if not backend.probing and not circuit.allow():
                if self.error is None:
                    self.error = AICircuitOpenError(
                        alias=backend.alias,
                        model_id=backend.config.model_id,
                        retry_in=circuit.state().retry_in,
                    )
                continue
            parameters = backend.merged_parameters(self.call_kwargs)
            deadline = _earliest(self.deadline, _deadline(parameters))
            yield backend, circuit, parameters, deadline

    def next_attempt(
        self, backend: Any, parameters: dict[str, Any], deadline: float | None
    ) -> Attempt:
        if self.pending is not None and self.observer is not None:
            self.observer.attempt_failed(*self.pending)
        self.pending = None
        self.number += 1
        attempt = Attempt(
            backend,
            _with_time_left(parameters, deadline, backend.config.attempt_timeout),
            self.number,
        )
        if self.observer is not None:
            self.observer.attempt_started(attempt)
        return attempt

    def wait_before_retry(
        self,
        attempt: Attempt,
        retries: int,
        error: BaseException,
        deadline: float | None,
    ) -> float | None:
        """Seconds to wait before retrying ``attempt``, or ``None`` when it
        must not be retried (the fallbacks come next, if the error allows)."""
        if not (isinstance(error, AIProviderError) and error.retryable):
            return None
        if retries >= attempt.backend.config.max_retries:
            return None
        wait = backoff(retries + 1, error)
        if deadline is None:
            return wait if wait <= MAX_WAIT else None
        if clock.monotonic() + wait + MIN_ATTEMPT_TIME > deadline:
            return None
        return wait

    def failed(self, attempt: Attempt, error: BaseException) -> BaseException:
        self.error = error
        self.pending = (attempt, error)
        if isinstance(error, AIProviderError):
            error.attempts = attempt.number
        return error

    def after_failure(
        self,
        circuit: CircuitBreaker,
        attempt: Attempt,
        error: AIProviderError,
        retries: int,
        deadline: float | None,
    ) -> float | None:
        """Seconds to wait before retrying ``attempt`` after ``error``;
        ``None`` to go on to the fallbacks. Raises ``error`` when neither may
        follow it."""
        circuit.failure(error)
        self.failed(attempt, error)
        wait = self.wait_before_retry(attempt, retries, error, deadline)
        if wait is None and not falls_back(error):
            raise error
        return wait

    def give_up(self) -> BaseException:
        """The failure to raise once every backend of the chain failed or
        was skipped: an :class:`AITimeoutError` saying so when the call's
        timeout left no time for an alias still to try."""
        error = self.error
        if self.skipped:
            return self.out_of_time()
        if error is None:  # An empty chain: nothing was configured to try.
            raise RuntimeError("no backend to call")
        return error

    def out_of_time(self) -> AITimeoutError:
        last = self.error
        backend = self.backend
        alias = getattr(last, "alias", None) or backend.alias
        model_id = getattr(last, "model_id", None) or backend.config.model_id
        values = {
            "timeout": f"{self.timeout:g}" if self.timeout is not None else "?",
            "count": self.number,
            "aliases": ", ".join(f'"{alias}"' for alias in self.skipped),
        }
        if self.number:
            # Translators: %(count)s requests were made; %(aliases)s are the
            # backends that were not tried, quoted and separated by commas.
            detail = gettext(
                "the call's timeout of %(timeout)s s ran out after %(count)s "
                "request(s); not tried: %(aliases)s"
            )
        else:
            detail = gettext(
                "the call's timeout of %(timeout)s s ran out before any "
                "request; not tried: %(aliases)s"
            )
        error = AITimeoutError(alias=alias, model_id=model_id, detail=detail % values)
        error.attempts = self.number
        error.__cause__ = last
        return error


def run(
    backend: Any,
    request: Callable[[Attempt], T],
    call_kwargs: dict[str, Any],
    observer: Any = None,
    deadline: float | None = None,
) -> tuple[T, Attempt]:
    """``request(attempt)`` until one succeeds: retried, then on each
    fallback (see the module's docstring). Returns its result and the
    attempt that succeeded; raises the last failure (its ``attempts`` says
    how many requests were made). ``observer`` (a ``usage.Recording``)
    hears ``attempt_started(attempt)`` before each request and
    ``attempt_failed(attempt, error)`` for every failure but the one
    raised. ``deadline`` (a :func:`call_deadline`): the call's, when it
    began before this request (else now plus the ``timeout`` parameter)."""
    plan = _Plan(backend, call_kwargs, observer, deadline)
    for target, circuit, parameters, deadline in plan.targets():
        retries = 0
        while True:
            attempt = plan.next_attempt(target, parameters, deadline)
            try:
                result = request(attempt)
            except AIProviderError as error:
                wait = plan.after_failure(circuit, attempt, error, retries, deadline)
                if wait is None:
                    break
                retries += 1
                clock.sleep(wait)
            except BaseException:
                circuit.release()
                raise
            else:
                circuit.success()
                return result, attempt
    raise plan.give_up()


async def arun(
    backend: Any,
    request: Callable[[Attempt], Awaitable[T]],
    call_kwargs: dict[str, Any],
    observer: Any = None,
    deadline: float | None = None,
) -> tuple[T, Attempt]:
    """:func:`run` for a coroutine function."""
    plan = _Plan(backend, call_kwargs, observer, deadline)
    for target, circuit, parameters, deadline in plan.targets():
        retries = 0
        while True:
            attempt = plan.next_attempt(target, parameters, deadline)
            try:
                result = await request(attempt)
            except AIProviderError as error:
                wait = plan.after_failure(circuit, attempt, error, retries, deadline)
                if wait is None:
                    break
                retries += 1
                await clock.asleep(wait)
            except BaseException:
                circuit.release()
                raise
            else:
                circuit.success()
                return result, attempt
    raise plan.give_up()
