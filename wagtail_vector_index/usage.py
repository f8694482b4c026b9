"""The usage ledger and budgets: who called which model, for what, at what cost.

Every call a backend makes (chat, streamed chat, embeddings; sync and async)
goes through :class:`UsageCall`, from the backend base classes, so that every
backend is covered once:

* before the call, the budgets that apply are checked and an estimate of the
  call is reserved against them (:class:`AIBudgetExceededError` when one is
  used up: nothing reaches the provider);
* after it (a stream: when it ends, is stopped or fails), one
  ``AIUsageRecord`` row is written and the ``AIUsageTotal`` rows of the
  period are incremented, in one transaction with ``F()`` updates.

Who is calling comes from :func:`usage_context` (a context variable) and
from the backend itself (``backend.with_usage()``, set by
``ai.get_chat_backend(site=..., request=...)``).

Recording never breaks a call: a failed write is logged and the call goes
on. This module sits below the backends in the package's layers; it reads
the models through Django's app registry at call time.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import datetime
import functools
import inspect
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar

from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F
from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal
from django.utils import timezone

from wagtail_vector_index import conf
from wagtail_vector_index.exceptions import AIBudgetExceededError
from wagtail_vector_index.redaction import get_logger, redact

logger = get_logger(__name__)

F_ = TypeVar("F_", bound=Callable[..., Any])

RECORD_MODEL = "wagtail_vector_index.AIUsageRecord"
TOTAL_MODEL = "wagtail_vector_index.AIUsageTotal"
RESERVATION_MODEL = "wagtail_vector_index.AIBudgetReservation"
SETTINGS_MODEL = "wagtail_vector_index.AISettings"
BUDGET_CACHE_KEY = "wagtail_vector_index:site-budget:{}"

USD = "USD"
TOKENS = "tokens"
MONTH = "month"
DAY = "day"
NO_SITE = "site:none"

#: Feature labels the package sets for its own callers.
CHAT_TEST_PAGE = "chat test page"
EMBEDDINGS_TEST_PAGE = "embeddings test page"
INDEX_UPDATE = "index update"
INDEX_QUERY = "index query"
INDEX_SEARCH = "index search"
PAGE_HELPER = "page helper"
PUBLISH_UPDATE = "publish-time update"
IMAGE_DESCRIPTION = "image description"

#: Sent once per budget per period when its spending reaches
#: ``USAGE["ALERT_THRESHOLD"]`` of the limit, with ``site`` (a Site, or
#: ``None`` for calls without a site and for users' daily budgets), ``limit``,
#: ``spent`` (``Decimal`` for USD, ``int`` for tokens), ``unit`` (``"USD"`` or
#: ``"tokens"``), ``period`` (``"month"`` or ``"day"``), ``scope`` (the
#: ``AIUsageTotal`` scope, e.g. ``"site:3"``) and ``start`` (the period's
#: first day). Connect a receiver to send an email::
#:
#:     @receiver(budget_threshold_reached)
#:     def warn(sender, site, limit, spent, unit, period, **kwargs): ...
budget_threshold_reached = Signal()

_ERROR_LENGTH = 2000


# -- who is calling ---------------------------------------------------------


@dataclass(frozen=True)
class UsageContext:
    """What a call is recorded under. ``None``: not known here."""

    feature: str | None = None
    site_id: int | None = None
    #: ``True`` where the site is known to be "no site" (not just unknown).
    no_site: bool = False
    user_id: int | None = None
    #: Whether the user's daily budget (``USER_DAILY_BUDGET_*``) applies.
    user_budget: bool = False

    def under(self, outer: UsageContext) -> UsageContext:
        """This context's values where ``outer`` leaves them unset."""
        has_site = outer.site_id is not None or outer.no_site
        return UsageContext(
            feature=outer.feature or self.feature,
            site_id=outer.site_id if has_site else self.site_id,
            no_site=outer.no_site if has_site else self.no_site,
            user_id=outer.user_id if outer.user_id is not None else self.user_id,
            user_budget=outer.user_budget or self.user_budget,
        )


EMPTY = UsageContext()
_current: contextvars.ContextVar[UsageContext] = contextvars.ContextVar(
    "wagtail_vector_index_usage", default=EMPTY
)
#: Set while a call is being recorded: calls it makes through other public
#: methods of the backend (a subclass's ``embed()`` calling ``super()``) are
#: part of it, not calls of their own.
_recording: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "wagtail_vector_index_recording", default=False
)


class Recording:
    """What the requests of the call being recorded report: the tokens the
    provider counted for each batch of an embedding call
    (:func:`report_tokens`), and the attempts that failed and were retried
    or passed to a fallback (the resilience layer's, one row each)."""

    def __init__(self) -> None:
        self.tokens: list[int] = []
        self.failed_attempts: list[tuple[Any, int, BaseException, float]] = []
        self.last_attempt = 1
        #: The backend of the latest attempt (of a call with one request).
        self.last_backend: Any = None
        self.attempt_started_at = time.perf_counter()
        self._lock = threading.Lock()

    def attempt_started(self, attempt: Any) -> None:
        with self._lock:
            if attempt.number >= self.last_attempt:
                self.last_attempt = attempt.number
                self.last_backend = attempt.backend
                self.attempt_started_at = time.perf_counter()

    def attempt_failed(self, attempt: Any, error: BaseException) -> None:
        latency = time.perf_counter() - self.attempt_started_at
        with self._lock:
            self.failed_attempts.append(
                (attempt.backend, attempt.number, error, latency)
            )


_reported: contextvars.ContextVar[Recording | None] = contextvars.ContextVar(
    "wagtail_vector_index_reported", default=None
)


def _pk(value: Any) -> int | None:
    if value is None:
        return None
    return getattr(value, "pk", value)


def make_context(
    *,
    feature: str | None = None,
    site: Any = None,
    user: Any = None,
    request: Any = None,
    user_budget: bool = False,
    no_site: bool = False,
) -> UsageContext:
    """A :class:`UsageContext` from objects (or primary keys).

    With ``request``, the site is Wagtail's site for it (unless ``site`` is
    given) and the user its authenticated user (unless ``user`` is given).
    """
    if request is not None:
        if site is None and not no_site:
            from wagtail.models import Site

            site = Site.find_for_request(request)
        if user is None:
            request_user = getattr(request, "user", None)
            if request_user is not None and request_user.is_authenticated:
                user = request_user
    return UsageContext(
        feature=feature or None,
        site_id=_pk(site),
        no_site=no_site and site is None,
        user_id=_pk(user),
        user_budget=user_budget,
    )


@contextlib.contextmanager
def usage_context(
    *,
    feature: str | None = None,
    site: Any = None,
    user: Any = None,
    request: Any = None,
    user_budget: bool = False,
) -> Iterator[UsageContext]:
    """Record the provider calls made inside the block under ``feature``,
    ``site`` and ``user`` (objects or primary keys; ``request`` gives both
    site and user); with ``user_budget=True`` the calls also count against
    the user's daily budget (``USER_DAILY_BUDGET_*``), as the test pages'::

        with usage_context(feature="newsletter summaries", site=site):
            backend.chat(messages=[...])

    Works across threads started with ``contextvars.copy_context()`` and in
    ``asyncio`` tasks (context variables). An enclosing block's values win,
    so a caller's own label covers everything the package does inside it
    (``index.query()`` inside "newsletter summaries" is recorded as that).
    """
    inner = make_context(
        feature=feature,
        site=site,
        user=user,
        request=request,
        user_budget=user_budget,
    )
    with _entered(inner) as current:
        yield current


@contextlib.contextmanager
def _entered(inner: UsageContext) -> Iterator[UsageContext]:
    """:func:`usage_context` for a context already made."""
    token = _current.set(inner.under(_current.get()))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def labelled(feature: str) -> Callable[[F_], F_]:
    """Decorate a function (sync or async) to run in ``usage_context(feature=
    feature)``, with its ``site`` and ``request`` keyword arguments (when
    given) as the site and user: how the package labels its entry points.
    For a coroutine function, a ``request``'s site and user are looked up in
    a thread: both may query the database, never on the event loop's."""

    def decorate(function: F_) -> F_:
        def context_for(kwargs: dict[str, Any]) -> UsageContext:
            return make_context(
                feature=feature,
                site=kwargs.get("site"),
                request=kwargs.get("request"),
            )

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def arun(*args: Any, **kwargs: Any) -> Any:
                if kwargs.get("request") is not None:
                    context = await run_sync(context_for, kwargs)
                else:  # Objects or primary keys: nothing to look up.
                    context = context_for(kwargs)
                with _entered(context):
                    return await function(*args, **kwargs)

            return arun  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with _entered(context_for(kwargs)):
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]

    return decorate


def current_context() -> UsageContext:
    """The :class:`UsageContext` of the enclosing :func:`usage_context` blocks."""
    return _current.get()


def report_tokens(tokens: int | None) -> None:
    """Backends call this with the tokens a provider reported for one batch
    of an embedding call (the batches' replies are not returned upwards)."""
    reported = _reported.get()
    if reported is not None and tokens is not None:
        reported.tokens.append(int(tokens))


def current_recording() -> Recording | None:
    """The :class:`Recording` of the call being recorded, if any."""
    return _reported.get()


# -- budgets ----------------------------------------------------------------


@dataclass(frozen=True)
class Budget:
    """One limit of one scope: ``unit`` is ``"USD"`` or ``"tokens"``."""

    scope: str
    period: str
    unit: str
    limit: Decimal | int
    site_id: int | None = None
    user_id: int | None = None


def period_start(period: str, now: datetime.datetime | None = None) -> datetime.date:
    """The first day of the current ``"month"`` or the ``"day"`` (UTC)."""
    today = (now or timezone.now()).astimezone(datetime.UTC).date()
    return today.replace(day=1) if period == MONTH else today


def site_scope(site_id: int | None) -> str:
    return f"site:{site_id}" if site_id is not None else NO_SITE


def _number(value: Any, unit: str) -> Decimal | int | None:
    """A budget setting as a number, or ``None`` (no limit; the checks
    report values that are not numbers or negative)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if unit == USD:
            number: Decimal | int = Decimal(str(value))
        else:
            number = int(value)
    except (ArithmeticError, TypeError, ValueError):
        return None
    return number if number >= 0 else None


def read_site_budget(site_id: int) -> tuple[Any, Any]:
    """``(monthly_budget_usd, monthly_budget_tokens)`` of a site's AI
    settings, from the database (``None`` where not set)."""
    row = (
        apps.get_model(SETTINGS_MODEL)
        .objects.filter(site_id=site_id)
        .values_list("monthly_budget_usd", "monthly_budget_tokens")
        .first()
    )
    return tuple(row) if row else (None, None)  # type: ignore[return-value]


def get_site_budget(site_id: int) -> tuple[Any, Any]:
    """:func:`read_site_budget`, cached as a site's parameter overrides are
    (``SITE_SETTINGS_CACHE_TIMEOUT``; saving the settings clears it)."""
    timeout = conf.get_site_settings_cache_timeout()
    key = BUDGET_CACHE_KEY.format(site_id)
    budget = cache.get(key) if timeout else None
    if budget is None:
        budget = read_site_budget(site_id)
        if timeout:
            cache.set(key, budget, timeout)
    return budget


def _forget_site_budget(sender: Any, instance: Any, **kwargs: Any) -> None:
    cache.delete(BUDGET_CACHE_KEY.format(instance.site_id))


post_save.connect(
    _forget_site_budget, sender=SETTINGS_MODEL, dispatch_uid="wvi-site-budget-save"
)
post_delete.connect(
    _forget_site_budget, sender=SETTINGS_MODEL, dispatch_uid="wvi-site-budget-delete"
)


def budgets_for(context: UsageContext) -> list[Budget]:
    """The budgets a call under ``context`` must fit in."""
    usage = conf.get_usage_settings()
    budgets: list[Budget] = []
    site_id = context.site_id
    if site_id is not None:
        own_usd, own_tokens = get_site_budget(site_id)
        usd = own_usd if own_usd is not None else usage.get("MONTHLY_BUDGET_USD")
        tokens = (
            own_tokens if own_tokens is not None else usage.get("MONTHLY_BUDGET_TOKENS")
        )
    else:
        usd = usage.get("NO_SITE_MONTHLY_BUDGET_USD")
        tokens = usage.get("NO_SITE_MONTHLY_BUDGET_TOKENS")
    scope = site_scope(site_id)
    for unit, value in ((USD, usd), (TOKENS, tokens)):
        limit = _number(value, unit)
        if limit is not None:
            budgets.append(Budget(scope, MONTH, unit, limit, site_id=site_id))
    if context.user_budget and context.user_id is not None:
        for unit, key in (
            (USD, "USER_DAILY_BUDGET_USD"),
            (TOKENS, "USER_DAILY_BUDGET_TOKENS"),
        ):
            limit = _number(usage.get(key), unit)
            if limit is not None:
                budgets.append(
                    Budget(
                        f"user:{context.user_id}",
                        DAY,
                        unit,
                        limit,
                        user_id=context.user_id,
                    )
                )
    return budgets


def _total_row(period: str, start: datetime.date, scope: str) -> Any:
    """The ``AIUsageTotal`` row, created if missing (race-safe: a unique
    constraint, and a savepoint around the insert that may lose the race)."""
    Total = apps.get_model(TOTAL_MODEL)
    row = Total.objects.filter(period=period, start=start, scope=scope).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return Total.objects.create(period=period, start=start, scope=scope)
    except IntegrityError:
        return Total.objects.get(period=period, start=start, scope=scope)


def spent(budget: Budget, row: Any) -> Decimal | int:
    return row.cost if budget.unit == USD else row.tokens


def remaining(site: Any = None) -> dict[str, Decimal | int]:
    """What is left of the monthly budgets of ``site`` (``None``: calls
    without a site), by unit, counting calls in flight; empty without a
    budget. Read from the month's ``AIUsageTotal`` row, not the ledger."""
    context = UsageContext(site_id=_pk(site), no_site=site is None)
    left: dict[str, Decimal | int] = {}
    for budget in budgets_for(context):
        start = period_start(budget.period)
        row = _total_row(budget.period, start, budget.scope)
        reserved = _reserved(row.pk)[budget.unit]
        reserved += _held_amounts((budget.scope, budget.period, start))[budget.unit]
        left[budget.unit] = max(budget.limit - spent(budget, row) - reserved, 0)
    return left


def _reserved(total_id: int, now: datetime.datetime | None = None) -> dict[str, Any]:
    """What the calls in flight under a totals row have reserved (the
    reservations not expired), by unit, and how many have expired (one
    query)."""
    from django.db.models import Count, Q, Sum

    now = now or timezone.now()
    live = Q(expires_at__gt=now)
    sums = (
        apps.get_model(RESERVATION_MODEL)
        .objects.filter(total_id=total_id)
        .aggregate(
            tokens=Sum("tokens", filter=live),
            cost=Sum("cost", filter=live),
            expired=Count("pk", filter=~live),
        )
    )
    return {
        TOKENS: int(sums["tokens"] or 0),
        USD: Decimal(sums["cost"] or 0),
        "expired": sums["expired"],
    }


#: The primary keys of the totals rows budget checks met, by (alias, scope,
#: period, start): a check then goes straight to locking its row (checked
#: to be that row still).
_total_pks: dict[tuple[str, str, str, datetime.date], int] = {}


def budget_status(site: Any = None) -> list[dict[str, Any]]:
    """The monthly budgets of ``site`` with what is spent this month:
    ``[{"unit", "limit", "spent", "ratio", "alert"}]`` (``alert``: at or above
    ``ALERT_THRESHOLD``)."""
    threshold = _threshold()
    context = UsageContext(site_id=_pk(site), no_site=site is None)
    status = []
    Total = apps.get_model(TOTAL_MODEL)
    for budget in budgets_for(context):
        row = Total.objects.filter(
            period=budget.period,
            start=period_start(budget.period),
            scope=budget.scope,
        ).first()
        used = spent(budget, row) if row else 0
        ratio = float(used) / float(budget.limit) if budget.limit else 1.0
        status.append(
            {
                "unit": budget.unit,
                "limit": budget.limit,
                "spent": used,
                "ratio": ratio,
                "alert": ratio >= threshold,
            }
        )
    return status


def _is_sqlite(alias: str) -> bool:
    from django.db import connections

    return connections[alias].vendor == "sqlite"


def _locked_total(alias: str, key: tuple[str, str, datetime.date]) -> Any:
    """The totals row of ``key`` (scope, period, start), created if missing,
    locked until the transaction ends: ``SELECT ... FOR UPDATE`` where the
    database has it; on SQLite (which has not) a write first, which takes
    the database's write lock before anything is read."""
    from django.db import connections

    Total = apps.get_model(TOTAL_MODEL)
    scope, period, start = key
    for _attempt in range(2):
        pk = _total_pks.get((alias, *key))
        if pk is None:
            pk = _total_row(period, start, scope).pk
            _total_pks[(alias, *key)] = pk
        rows = Total.objects.using(alias).filter(
            pk=pk, scope=scope, period=period, start=start
        )
        if connections[alias].features.has_select_for_update:
            row = rows.select_for_update().first()
        else:
            rows.update(calls=F("calls"))
            row = rows.first()
        if row is not None:
            return row
        # The row the process knew is gone (pruned, or a test rolled back).
        _total_pks.pop((alias, *key), None)
    raise RuntimeError(f"No AI usage totals row for {key}")


def _drop_traceback(error: BaseException) -> None:
    """Free what a handled ``error`` keeps alive: Django re-raises database
    errors from a ``__exit__`` whose frame holds the new exception, so the
    exception, its traceback and every frame in it (the caller's, with
    their locals: a stream about to be returned, say) form a cycle that
    only the garbage collector would free."""
    import traceback

    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        error.__traceback__ = None
        error = error.__cause__ or error.__context__  # type: ignore[assignment]


def _is_locked(error: BaseException) -> bool:
    from django.db import OperationalError

    return isinstance(error, OperationalError) and "locked" in str(error)


def _threshold() -> float:
    value = conf.get_usage_settings().get("ALERT_THRESHOLD")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0.8
    return float(value) if 0 < value <= 1 else 0.8


def site_name(site: Any) -> str:
    """A site as editors know it: its name, else its hostname."""
    return getattr(site, "site_name", "") or getattr(site, "hostname", "") or str(site)


def _site(site_id: int | None) -> Any:
    if site_id is None:
        return None
    site = apps.get_model("wagtailcore", "Site").objects.filter(pk=site_id).first()
    return site if site is not None else site_id


def _user(user_id: int | None) -> Any:
    if user_id is None:
        return None
    from django.contrib.auth import get_user_model

    user = get_user_model()._default_manager.filter(pk=user_id).first()
    return user if user is not None else user_id


# -- one call ---------------------------------------------------------------


def _decimal(cost: float | Decimal | None) -> Decimal | None:
    if cost is None:
        return None
    return Decimal(repr(float(cost))).quantize(Decimal("1e-8"))


#: Seconds a reservation counts against its budget: a call still running
#: after that (a stream read for longer, say) is counted when it ends, and a
#: call whose process died stops holding room in the budget.
RESERVATION_SECONDS = 900


@dataclass
class _Reservation:
    """One call's reservation against one totals row: a row of
    ``AIBudgetReservation`` (``pk``), or, where the database could not take
    a write (see :meth:`UsageCall._reserve`), an entry of this process's
    :data:`_held` (``pk`` is ``None``)."""

    key: tuple[str, str, datetime.date]
    tokens: int
    cost: Decimal
    pk: int | None = None


#: Reservations held in this process's memory, by totals row (scope,
#: period, start): counted by every budget check of this process, given
#: back when their calls' rows are written.
_held: dict[tuple[str, str, datetime.date], list[_Reservation]] = {}
_held_lock = threading.Lock()


def _held_amounts(key: tuple[str, str, datetime.date]) -> dict[str, Decimal | int]:
    with _held_lock:
        held = list(_held.get(key, ()))
    return {
        TOKENS: sum(r.tokens for r in held),
        USD: sum((r.cost for r in held), Decimal(0)),
    }


def _write_alias() -> str:
    from django.db import router

    return router.db_for_write(apps.get_model(TOTAL_MODEL))


@contextlib.contextmanager
def own_connection(alias: str, *, busy_timeout: float | None = None) -> Iterator[Any]:
    """Run the block's queries on ``alias`` through a new connection of its
    own, in autocommit: what the block writes is committed whatever the
    caller's transaction does, and no lock of the caller's is waited on or
    held. The calling thread's connection is put back afterwards."""
    from django.db import connections

    caller = connections[alias]
    own = type(caller)(caller.settings_dict, alias)
    connections[alias] = own
    try:
        if busy_timeout is not None and own.vendor == "sqlite":
            with own.cursor() as cursor:
                cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        yield own
    finally:
        connections[alias] = caller
        own.close()


def _in_callers_transaction(alias: str) -> bool:
    from django.db import connections

    return connections[alias].in_atomic_block


@dataclass
class UsageCall:
    """One provider call being recorded (made by the backend base classes).

    ``estimate`` gives ``(tokens, cost)`` the call is expected to spend; it is
    only called when a budget applies.
    """

    backend: Any
    kind: str
    context: UsageContext
    input_count: int = 0
    streamed: bool = False
    prompt: Callable[[], str] | None = None
    estimate: Callable[[], tuple[int, float | None]] | None = None
    started: float = field(default_factory=time.perf_counter)
    created_at: datetime.datetime = field(default_factory=timezone.now)
    budgets: list[Budget] = field(default_factory=list)
    reservations: list[_Reservation] = field(default_factory=list)
    finished: bool = False
    #: The request of the call this record is for (1: the first; retries
    #: and fallbacks count up). The record names the backend that made it.
    attempt: int = 1
    #: The database the calling code used when the call started (see
    #: :func:`_target`): a stream freed after a test run has ended is not
    #: written to the site's real database.
    target: tuple[str, Any] | None = field(default_factory=lambda: _target())

    # -- before the call ----------------------------------------------------

    def start(self) -> None:
        """Check the budgets and reserve the call's estimate against them.

        Raises :class:`AIBudgetExceededError` when a budget has no room for
        the call's estimate (nothing is then reserved). The reservation is
        committed at once, never left in the caller's open transaction: in
        autocommit on the caller's connection, inside a transaction on a
        connection of its own (see :func:`own_connection`). Any other failure here
        (the database unreachable or locked) is logged, and the call goes
        on unchecked: a budget is a guard against runaway spending, not a
        reason to take a site's AI features down with its database.
        """
        try:
            self.budgets = budgets_for(self.context)
            if self.budgets:
                self._reserve()
        except AIBudgetExceededError:
            self.finished = True
            raise
        except Exception:
            logger.exception("Could not check the AI budgets of %r", self.backend)
        self.started = time.perf_counter()

    def _reserve(self) -> None:
        tokens, cost = self.estimate() if self.estimate else (0, None)
        alias = _write_alias()
        if not _writer.enabled:
            # Everything in the caller's thread and transaction (tests that
            # run in a transaction other connections cannot see); a savepoint
            # keeps a failure from breaking that transaction.
            with transaction.atomic(using=alias):
                self._reserve_rows(tokens, cost)
            return
        if not _in_callers_transaction(alias):
            # Autocommit: the check's own transaction commits at once on the
            # caller's connection, whatever the caller does next.
            self._reserve_rows(tokens, cost)
            return
        if _is_sqlite(alias):
            # SQLite (without WAL) commits nothing while another connection
            # is inside a transaction that has read: the caller's, under
            # ATOMIC_REQUESTS. Waiting would wait for the caller, who waits
            # for us, and writing in the caller's transaction would hold the
            # database's one write lock for the whole provider call (other
            # requests' writes then fail with "database is locked"). So try
            # at once, and failing that, check without writing and hold the
            # reservation in this process until the call is recorded.
            try:
                with own_connection(alias, busy_timeout=0):
                    self._reserve_rows(tokens, cost)
                return
            except AIBudgetExceededError:
                raise
            except Exception as error:
                if not _is_locked(error):
                    raise
                _drop_traceback(error)
            self._reserve_rows(tokens, cost, durable=False)
            return
        # Inside the caller's transaction: a connection of our own (its
        # set-up costs a few milliseconds on PostgreSQL; the caller's
        # transaction can then neither undo the reservation nor hold a lock
        # on the totals row across the provider call).
        with own_connection(alias):
            self._reserve_rows(tokens, cost)

    def _reserve_rows(
        self, tokens: int, cost: float | None, *, durable: bool = True
    ) -> None:
        """Count what is spent and reserved against each budget, and reserve
        the estimate where every budget has room for it (``spent + reserved
        + estimate <= limit``), in one transaction that locks the period's
        totals rows first. ``durable=False``: nothing is written; the
        reservation is held in this process (:data:`_held`)."""
        by_scope: dict[tuple[str, str], list[Budget]] = {}
        for budget in self.budgets:
            by_scope.setdefault((budget.scope, budget.period), []).append(budget)
        Total = apps.get_model(TOTAL_MODEL)
        Reservation = apps.get_model(RESERVATION_MODEL)
        keys = sorted(by_scope)
        now = timezone.now()
        alias = _write_alias()
        if durable:
            # The rows found or created before the transaction (in
            # autocommit), so that its first statement takes the lock.
            for scope, period in keys:
                key = (alias, scope, period, period_start(period, now))
                if key not in _total_pks:
                    _total_pks[key] = _total_row(period, key[3], scope).pk
        reservations: list[_Reservation] = []
        block = transaction.atomic(using=alias) if durable else contextlib.nullcontext()
        with block:
            # Locked in one order, so that two checks cannot deadlock.
            for key in keys:
                scope, period = key
                held_key = (scope, period, period_start(period, now))
                if durable:
                    row = _locked_total(alias, held_key)
                    pk = row.pk
                else:
                    row = Total.objects.filter(
                        period=period, start=held_key[2], scope=scope
                    ).first() or Total(period=period, start=held_key[2], scope=scope)
                reserved = _reserved(row.pk, now) if row.pk else {TOKENS: 0, USD: 0}
                if durable and reserved.get("expired"):
                    Reservation.objects.filter(
                        total_id=row.pk, expires_at__lte=now
                    ).delete()
                held = _held_amounts(held_key)
                # The estimate, but at least what an average call of this
                # period spent (the completion of a chat is not known ahead).
                reserve_tokens = max(int(tokens or 0), row.tokens // max(row.calls, 1))
                reserve_cost = max(
                    _decimal(cost) or Decimal(0),
                    (Decimal(row.cost) / max(row.calls, 1)).quantize(Decimal("1e-8")),
                )
                needed = {TOKENS: reserve_tokens, USD: reserve_cost}
                for budget in by_scope[key]:
                    unit = budget.unit
                    used = spent(budget, row) + reserved[unit] + held[unit]
                    if used >= budget.limit or used + needed[unit] > budget.limit:
                        self._give_back(reservations)
                        raise self._exceeded(budget, used, needed[unit])
                reservation = _Reservation(held_key, reserve_tokens, reserve_cost)
                if durable:
                    reservation.pk = Reservation.objects.create(
                        total_id=pk,
                        tokens=reserve_tokens,
                        cost=reserve_cost,
                        created_at=now,
                        expires_at=now
                        + datetime.timedelta(seconds=RESERVATION_SECONDS),
                    ).pk
                else:
                    with _held_lock:
                        _held.setdefault(held_key, []).append(reservation)
                reservations.append(reservation)
        self.reservations = reservations

    @staticmethod
    def _give_back(reservations: list[_Reservation]) -> None:
        """Forget the reservations held in this process's memory (rows are
        deleted or rolled back)."""
        with _held_lock:
            for reservation in reservations:
                if reservation.pk is not None:
                    continue
                held = _held.get(reservation.key, [])
                if any(r is reservation for r in held):
                    held[:] = [r for r in held if r is not reservation]
                if not held:
                    _held.pop(reservation.key, None)

    def _exceeded(
        self, budget: Budget, used: Decimal | int, needed: Decimal | int
    ) -> AIBudgetExceededError:
        """The refusal, with the figures the check used: ``spent`` counts the
        calls in flight, ``needed`` is what this call would have reserved."""
        logger.info(
            "AI budget used up (%s, %s %s; %s spent or reserved, %s needed): "
            "refused a call to %r",
            budget.scope,
            budget.limit,
            budget.unit,
            used,
            needed,
            self.backend,
        )
        return AIBudgetExceededError(
            site=_site(budget.site_id),
            limit=budget.limit,
            spent=used,
            unit=budget.unit,
            period=budget.period,
            user=_user(budget.user_id),
            needed=needed,
        )

    def _release(self) -> None:
        """Delete the call's reservations: by primary key, so that releasing
        twice, or a reservation the caller's rollback already took away,
        changes nothing."""
        if not self.reservations:
            return
        reservations, self.reservations = self.reservations, []
        self._give_back(reservations)
        pks = [r.pk for r in reservations if r.pk is not None]
        if pks:
            apps.get_model(RESERVATION_MODEL).objects.filter(pk__in=pks).delete()

    # -- after the call -----------------------------------------------------

    def succeeded(
        self,
        *,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        cost: float | None,
        response: Callable[[], str] | None = None,
        time_to_first_token: float | None = None,
        stopped_early: bool = False,
    ) -> None:
        """Record the call as a success (a stream: also one stopped early)."""
        self._write(
            outcome="success",
            error_message="",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
            response=response,
            time_to_first_token=time_to_first_token,
            stopped_early=stopped_early,
        )

    def failed(
        self,
        error: BaseException,
        *,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        cost: float | None = None,
        time_to_first_token: float | None = None,
    ) -> None:
        """Record the call as failed with ``error`` (its class name, and its
        message without credentials)."""
        self._write(
            outcome=type(error).__name__,
            error_message=redact(str(error))[:_ERROR_LENGTH],
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=cost,
            response=None,
            time_to_first_token=time_to_first_token,
            stopped_early=False,
        )

    # -- retries and fallbacks ------------------------------------------------

    def record_failed_attempt(
        self,
        backend: Any,
        number: int,
        error: BaseException,
        latency: float | None = None,
    ) -> None:
        row = replace(
            self,
            backend=backend,
            attempt=number,
            budgets=[],
            reservations=[],
            finished=False,
        )
        if latency is not None:
            row.started = time.perf_counter() - latency
        row.failed(error)

    def record_attempts(self, recording: Recording) -> None:
        """The failed attempts ``recording`` collected (retried requests, or
        passed to a fallback), one record each; the call's own record names
        the backend of the last attempt and its number."""
        for backend, number, error, latency in recording.failed_attempts:
            self.record_failed_attempt(backend, number, error, latency)
        if recording.last_backend is not None:
            self.backend = recording.last_backend
            self.started = recording.attempt_started_at
        self.attempt = max(self.attempt, recording.last_attempt)

    def _write(self, **values: Any) -> None:
        if self.finished:
            return
        self.finished = True
        values["latency"] = time.perf_counter() - self.started
        if _writer.enabled:
            # The caller goes on at once; the writer thread saves the row,
            # in the database the caller's code used (see _target).
            if self.target is not None:
                _writer.submit((self, values, self.target))
            else:
                # Not recorded (no database here): what it held in this
                # process is given back; a row would expire.
                self._give_back(self.reservations)
        else:
            write_records([(self, values)])

    def _record(
        self,
        *,
        outcome: str,
        error_message: str,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        cost: float | None,
        response: Callable[[], str] | None,
        time_to_first_token: float | None,
        stopped_early: bool,
        latency: float,
    ) -> dict[str, Any]:
        """The call's ``AIUsageRecord`` row, as column values."""
        store = bool(conf.get_usage_settings().get("STORE_PROMPTS"))
        config = self.backend.config
        context = self.context
        return {
            "created_at": self.created_at,
            "kind": self.kind,
            "alias": config.alias[:255],
            "model_id": config.model_id[:255],
            "site_id": context.site_id,
            "user_id": context.user_id,
            "feature": (context.feature or "")[:100],
            "prompt_tokens": max(int(prompt_tokens or 0), 0),
            "completion_tokens": max(int(completion_tokens or 0), 0),
            "cost": _decimal(cost),
            "latency_ms": int(latency * 1000),
            "time_to_first_token_ms": (
                int(time_to_first_token * 1000)
                if time_to_first_token is not None
                else None
            ),
            "streamed": self.streamed,
            "stopped_early": stopped_early,
            "input_count": self.input_count,
            "attempt": self.attempt,
            "outcome": outcome[:100],
            "error_message": error_message,
            "prompt": redact(self.prompt()) if store and self.prompt else "",
            "response": redact(response()) if store and response else "",
        }


#: The ledger's columns, in the order :func:`insert_records` writes them.
RECORD_COLUMNS = (
    "created_at",
    "kind",
    "alias",
    "model_id",
    "site_id",
    "user_id",
    "feature",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "latency_ms",
    "time_to_first_token_ms",
    "streamed",
    "stopped_early",
    "input_count",
    "attempt",
    "outcome",
    "error_message",
    "prompt",
    "response",
)


def insert_records(rows: list[dict[str, Any]]) -> None:
    """One ``INSERT`` of ledger rows (``executemany``): the ORM's
    ``bulk_create`` prepares every field of every row in Python, which costs
    ten times as much, in the same process as the calls."""
    if not rows:
        return
    from django.db import connections, router

    Record = apps.get_model(RECORD_MODEL)
    connection = connections[router.db_for_write(Record)]
    ops = connection.ops
    quote = ops.quote_name
    table = quote(Record._meta.db_table)
    columns = ", ".join(quote(column) for column in RECORD_COLUMNS)
    placeholders = ", ".join(["%s"] * len(RECORD_COLUMNS))
    values = []
    for row in rows:
        cost = row["cost"]
        values.append(
            tuple(
                ops.adapt_datetimefield_value(row[column])
                if column == "created_at"
                else (
                    ops.adapt_decimalfield_value(cost, 14, 8)
                    if column == "cost" and cost is not None
                    else row[column]
                )
                for column in RECORD_COLUMNS
            )
        )
    with connection.cursor() as cursor:
        # The table and column names are the model's own, quoted.
        sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608
        cursor.executemany(sql, values)


#: Seconds the writer thread waits before trying a batch again while the
#: database is locked (SQLite), one delay a try: about 30 s in all.
LOCKED_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 14.0)


def write_records(
    items: list[tuple[UsageCall, dict[str, Any]]], *, retry_locked: bool = False
) -> None:
    """Save the records of ended calls and add them to the period's totals,
    in one transaction (one INSERT, one UPDATE per totals row); then release
    their reservations and check the budget alerts. Failures are logged,
    never raised: the calls have ended, whatever happens here."""
    Total = apps.get_model(TOTAL_MODEL)
    records = []
    sums: dict[tuple[str, str], list[Any]] = {}
    for call, values in items:
        try:
            record = call._record(**values)
        except Exception:
            logger.exception("Could not record an AI usage record for %r", call.backend)
            continue
        records.append(record)
        scopes = [(MONTH, site_scope(record["site_id"]))]
        if record["user_id"] is not None:
            scopes.append((DAY, f"user:{record['user_id']}"))
        for scope in scopes:
            total = sums.setdefault(scope, [0, 0, 0, Decimal(0)])
            total[0] += 1
            total[1] += 0 if record["outcome"] == "success" else 1
            total[2] += record["prompt_tokens"] + record["completion_tokens"]
            total[3] += record["cost"] or Decimal(0)
    now = timezone.now()
    for attempt in range(len(LOCKED_RETRY_DELAYS) + 1):
        try:
            with transaction.atomic(using=_write_alias()):
                insert_records(records)
                for (period, scope), (calls, errors, tokens, cost) in sums.items():
                    start = period_start(period, now)
                    increments = {
                        "calls": F("calls") + calls,
                        "errors": F("errors") + errors,
                        "tokens": F("tokens") + tokens,
                        "cost": F("cost") + cost,
                    }
                    rows = Total.objects.filter(period=period, start=start, scope=scope)
                    if not rows.update(**increments):
                        # First call of the period: create the row (or find
                        # the one another process just created), then add.
                        row = _total_row(period, start, scope)
                        Total.objects.filter(pk=row.pk).update(**increments)
            break
        except Exception as error:
            if (
                retry_locked
                and _is_locked(error)
                and attempt < len(LOCKED_RETRY_DELAYS)
            ):
                # SQLite's write lock held by a long transaction (a request
                # under ATOMIC_REQUESTS): these calls were paid for, wait.
                time.sleep(LOCKED_RETRY_DELAYS[attempt])
                continue
            logger.exception(
                "Could not record %s AI usage records; the calls went on",
                len(records),
            )
            break
    # Released after the totals are written: until then a budget counts the
    # calls as reserved (for that moment twice, never not at all).
    budgets: set[Budget] = set()
    for call, _values in items:
        try:
            call._release()
        except Exception:
            # It expires (RESERVATION_SECONDS): the budget is not held long.
            logger.exception("Could not release an AI budget reservation")
        budgets.update(call.budgets)
    if budgets:
        try:
            _alert(budgets)
        except BaseException:
            # A receiver of budget_threshold_reached may raise anything;
            # the ledger goes on.
            logger.exception("Could not check the AI budget alerts")


def _alert(budgets: set[Budget]) -> None:
    """Tell (once per budget per period) that spending reached
    ``ALERT_THRESHOLD`` of a limit: a warning in the log and
    :data:`budget_threshold_reached`. Whoever flips the row's flag first, by
    a conditional update, sends it: one process, one time."""
    threshold = Decimal(str(_threshold()))
    Total = apps.get_model(TOTAL_MODEL)
    for budget in sorted(budgets, key=lambda b: (b.scope, b.period, b.unit)):
        start = period_start(budget.period)
        row = Total.objects.filter(
            period=budget.period, start=start, scope=budget.scope
        ).first()
        if row is None:
            continue
        used = spent(budget, row)
        if Decimal(used) < threshold * Decimal(budget.limit):
            continue
        flag = "usd_alert_sent" if budget.unit == USD else "tokens_alert_sent"
        if not Total.objects.filter(pk=row.pk, **{flag: False}).update(**{flag: True}):
            continue
        logger.warning(
            "AI budget alert: %s spent %s of %s %s this %s",
            budget.scope,
            used,
            budget.limit,
            budget.unit,
            budget.period,
        )
        budget_threshold_reached.send(
            sender=UsageCall,
            site=_site(budget.site_id),
            limit=budget.limit,
            spent=used,
            unit=budget.unit,
            period=budget.period,
            scope=budget.scope,
            start=start,
        )


#: The most ledger rows the writer thread commits at once, and how long it
#: lets rows gather before it writes them (seconds): one commit, one INSERT
#: and one UPDATE per totals row for all of them.
WRITE_BATCH = 500
WRITE_DELAY = 0.5


#: Seconds :func:`flush` (and the exit hook) waits at most for the writer.
FLUSH_TIMEOUT = 10.0


def _target() -> tuple[str, Any] | None:
    """The database the calling code uses for the ledger, as ``(alias,
    NAME)``; ``None`` where the calling code may not use a database at all
    (a test that has no database access): its rows are not written."""
    from django.db import connections

    alias = _write_alias()
    connection = connections[alias]
    # Django's SimpleTestCase (and a TestCase's databases not asked for)
    # replace the connection's methods by _DatabaseFailure; pytest-django
    # replaces ensure_connection for every connection while access is
    # blocked. Either way the caller's own code could not write here.
    if type(getattr(connection, "cursor", None)).__name__ == "_DatabaseFailure":
        return None
    ensure = getattr(type(connection), "ensure_connection", None)
    if getattr(ensure, "__name__", "") == "_blocking_wrapper":
        return None
    return alias, connection.settings_dict.get("NAME")


def _still_there(target: tuple[str, Any]) -> bool:
    """Whether ``target`` is still the database its alias names: a test run
    points an alias at its test database and back at the site's real one
    when it ends; rows of the test run must not land in the real one."""
    from django.db import connections

    alias, name = target
    return connections[alias].settings_dict.get("NAME") == name


class _Writer:
    """Writes ledger rows in a thread of its own, so that a call never waits
    for the database (a commit costs several milliseconds on SQLite, and the
    ORM's work about as much per row), and so that the rows are committed
    whatever the caller's transaction does.

    One daemon thread per process (started on first use, again in a forked
    child, and again if it ever died). It lets the rows of up to
    :data:`WRITE_DELAY` seconds gather and writes them with
    :func:`write_records`. :func:`flush` (and an ``atexit`` hook) writes
    what is queued at once and waits for it, at most :data:`FLUSH_TIMEOUT`.
    """

    def __init__(self) -> None:
        self.enabled = True
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._queue: queue.Queue[Any] = queue.Queue()
        self._lock = threading.Lock()
        self._now = threading.Event()

    def _after_fork(self) -> None:
        # A forked child writes its own calls with a thread of its own; the
        # rows its parent had queued are the parent's to write.
        self._pid = None
        self._thread = None
        self._queue = queue.Queue()
        self._now = threading.Event()
        self._lock = threading.Lock()

    def submit(self, item: Any) -> None:
        thread = self._thread
        if self._pid != os.getpid() or thread is None or not thread.is_alive():
            with self._lock:
                thread = self._thread
                if self._pid != os.getpid() or thread is None or not thread.is_alive():
                    if self._pid != os.getpid():
                        self._queue = queue.Queue()
                        self._now = threading.Event()
                    self._thread = threading.Thread(
                        target=self._run,
                        args=(self._queue, self._now),
                        name="wagtail-vector-index-usage",
                        daemon=True,
                    )
                    self._thread.start()
                    self._pid = os.getpid()
        self._queue.put(item)

    def _run(self, items: queue.Queue[Any], now: threading.Event) -> None:
        from django.db import connections

        while True:
            batch = [items.get()]
            try:
                deadline = time.monotonic() + WRITE_DELAY
                while len(batch) < WRITE_BATCH:
                    left = deadline - time.monotonic()
                    if left <= 0 or now.is_set():
                        try:  # Whatever is queued already goes in this batch.
                            batch.append(items.get_nowait())
                            continue
                        except queue.Empty:
                            break
                    try:
                        batch.append(items.get(timeout=min(left, 0.05)))
                    except queue.Empty:
                        continue
                self._write(batch)
            except BaseException:  # write_records logs its own; a last resort.
                logger.exception("The AI usage writer failed")
            finally:
                for _item in batch:
                    items.task_done()
            try:
                if items.empty():
                    # Idle: hold no connection (nor, on SQLite, any lock).
                    connections.close_all()
            except BaseException:
                logger.exception("The AI usage writer could not close its connections")

    def _write(self, batch: list[Any]) -> None:
        by_target: dict[Any, list[tuple[UsageCall, dict[str, Any]]]] = {}
        for call, values, target in batch:
            by_target.setdefault(target, []).append((call, values))
        for target, items in by_target.items():
            if not _still_there(target):
                for call, _values in items:
                    call._give_back(call.reservations)
                logger.warning(
                    "%s AI usage records not written: their database (%s) is "
                    "no longer configured (a test run ended?)",
                    len(items),
                    target[0],
                )
                continue
            write_records(items, retry_locked=True)

    def flush(self, timeout: float | None = None) -> bool:
        """Write what is queued now and wait until it is written, at most
        ``timeout`` seconds (:data:`FLUSH_TIMEOUT`); ``False`` if it was
        not all written by then."""
        if self._pid != os.getpid() or self._thread is None:
            return True
        items = self._queue
        deadline = time.monotonic() + (FLUSH_TIMEOUT if timeout is None else timeout)
        self._now.set()
        try:
            with items.all_tasks_done:
                while items.unfinished_tasks:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._thread.is_alive():
                        logger.warning(
                            "%s AI usage records not written yet",
                            items.unfinished_tasks,
                        )
                        return False
                    items.all_tasks_done.wait(min(left, 0.1))
            return True
        finally:
            self._now.clear()


_writer = _Writer()
atexit.register(_writer.flush)
os.register_at_fork(after_in_child=_writer._after_fork)
# The parent's calls in flight are the parent's to give back.
os.register_at_fork(after_in_child=_held.clear)


def flush(timeout: float | None = None) -> bool:
    """Write the ledger rows of the calls made so far now, and wait for them
    (they are written by a thread of their own, in batches; see
    :func:`write_in_background`), at most ``timeout`` seconds (default
    :data:`FLUSH_TIMEOUT`). ``False`` if some were not written by then."""
    return _writer.flush(timeout)


def write_in_background(enabled: bool) -> None:
    """Write ledger rows in the calling thread (``False``: the tests, whose
    transaction other threads cannot see) or in the writer thread (``True``,
    the default)."""
    _writer.flush()
    _writer.enabled = enabled


def writes_in_background() -> bool:
    return _writer.enabled


async def finish_async(function: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Record the end of an asynchronous call: queued for the writer thread,
    or (writing in the calling thread) in a thread, off the event loop."""
    if _writer.enabled:
        function(*args, **kwargs)
    else:
        await run_sync(function, *args, **kwargs)


def begin(
    backend: Any,
    kind: str,
    *,
    input_count: int,
    streamed: bool = False,
    prompt: Callable[[], str] | None = None,
    estimate: Callable[[], tuple[int, float | None]] | None = None,
) -> UsageCall | None:
    """A :class:`UsageCall` for a call ``backend`` is about to make, or
    ``None`` when nothing is recorded (``USAGE["ENABLED"]`` is false, or the
    call is part of one already being recorded). Call ``start()`` (or
    ``await astart(call)``) on it before the request."""
    if _recording.get() or not settings.configured:
        # (Without Django settings, as in a script using the backends
        # alone, there is no database to record in.)
        return None
    if not conf.get_usage_settings().get("ENABLED", True):
        return None
    context = getattr(backend, "attribution", EMPTY).under(_current.get())
    return UsageCall(
        backend=backend,
        kind=kind,
        context=context,
        input_count=input_count,
        streamed=streamed,
        prompt=prompt,
        estimate=estimate,
    )


@contextlib.contextmanager
def recording() -> Iterator[Recording]:
    """Mark the block as part of a recorded call (nested public calls are
    not recorded again) and collect what its requests report."""
    reported = Recording()
    token = _recording.set(True)
    reported_token = _reported.set(reported)
    try:
        yield reported
    finally:
        _reported.reset(reported_token)
        _recording.reset(token)


async def run_sync(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function`` in a thread (``sync_to_async``): database work never runs
    on the event loop's thread. Only for the ledger's own, short writes."""
    from asgiref.sync import sync_to_async

    return await sync_to_async(function)(*args, **kwargs)


def describe_messages(messages: list[dict[str, Any]]) -> str:
    """A conversation as it is stored when ``STORE_PROMPTS`` is on (an
    image sent as a ``data:`` URL is stored as its type and size only)."""
    return json.dumps(
        [_without_image_data(message) for message in messages],
        ensure_ascii=False,
        default=str,
    )


def _without_image_data(message: Any) -> Any:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return message
    parts = []
    for part in content:
        image = part.get("image_url") if isinstance(part, dict) else None
        url = image.get("url") if isinstance(image, dict) else None
        if isinstance(url, str) and url.startswith("data:"):
            header, _, data = url.partition(",")
            part = {
                **part,
                "image_url": {**image, "url": f"{header},<{len(data)} characters>"},
            }
        parts.append(part)
    return {**message, "content": parts}


def with_context(context: UsageContext, **changes: Any) -> UsageContext:
    return replace(context, **changes)
