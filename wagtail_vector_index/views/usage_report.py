"""Reports › AI usage: the usage ledger (:class:`AIUsageRecord`) listed,
filtered, totalled, charted per day, broken down and exported.

Built on Wagtail's own :class:`~wagtail.admin.views.reports.ReportView`: the
filters are a django-filter ``FilterSet`` shown in the report's filter
drawer, the CSV and XLSX downloads are Wagtail's ``SpreadsheetExportMixin``
(``list_export``). The totals, the chart and the breakdowns are computed from
the same filtered rows, in the results fragment, so that they follow the
filters when Wagtail refreshes the results without reloading the page.

Days are calendar days in the admin's current time zone, as the date filter
reads them. Prompts and answers are never shown nor exported.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import django_filters
from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.http import urlencode
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from wagtail.admin.active_filters import (
    ActiveFilter,
    ModelChoiceFilterAdapter,
    register_filter_adapter_class,
)
from wagtail.admin.filters import DateRangePickerWidget, WagtailFilterSet
from wagtail.admin.ui.tables import (
    Column,
    DateColumn,
    NumberColumn,
    StatusTagColumn,
    UserColumn,
)
from wagtail.admin.views.reports import ReportView
from wagtail.models import Site

from wagtail_vector_index import conf, usage
from wagtail_vector_index.ai_utils.backends.base import (
    _CONNECTION_CHECK as CONNECTION_CHECK,  # The label of check_ai_backends calls.
)
from wagtail_vector_index.exceptions import AIProviderError
from wagtail_vector_index.models import AIUsageRecord, AIUsageTotal
from wagtail_vector_index.views import USAGE_REPORT_PERMISSION
from wagtail_vector_index.views.base import forbidden

#: The ``outcome`` filter's choice for every call that did not succeed (an
#: outcome is ``"success"`` or an exception's class name, which cannot hold
#: a hyphen).
ANY_ERROR = "any-error"
#: Rows shown in each breakdown.
BREAKDOWN_SIZE = 10
#: The chart shows at most this many days (the most recent ones).
MAX_CHART_DAYS = 366

SUCCESS = AIUsageRecord.SUCCESS

#: The ``AIUsageTotal`` scope prefix of a user's daily totals.
USER_SCOPE = "user:"

#: The feature labels the package records calls under (the site's own
#: ``usage_context(feature=...)`` labels filter through the breakdown's links).
FEATURES = (
    usage.CHAT_TEST_PAGE,
    usage.EMBEDDINGS_TEST_PAGE,
    usage.INDEX_UPDATE,
    usage.INDEX_QUERY,
    usage.INDEX_SEARCH,
    usage.PAGE_HELPER,
    usage.PUBLISH_UPDATE,
    CONNECTION_CHECK,
)

#: One aggregate per figure the report shows, for a whole set of rows or
#: per group (day, site, alias, ...). Named apart from the model's fields,
#: which an aggregate may not shadow.
AGGREGATES = {
    "calls": Count("pk"),
    "errors": Count("pk", filter=~Q(outcome=SUCCESS)),
    "prompt_sum": Sum("prompt_tokens"),
    "completion_sum": Sum("completion_tokens"),
    "cost_sum": Sum("cost"),
}


# -- formatting ------------------------------------------------------------------


def format_usd(value: Decimal | None) -> str:
    """``value`` in US dollars: cents, or six decimals under a cent (a
    single embedding call costs a fraction of a cent)."""
    if value is None:
        return gettext("unknown")
    value = Decimal(value)
    if value == 0:
        return "$0.00"
    if abs(value) < Decimal("0.01"):
        small = value.quantize(Decimal("0.000001"))
        if small == 0:
            return "< $0.000001"
        return "$" + number_format(small, 6).rstrip("0")
    return "$" + number_format(value, 2, force_grouping=True)


def format_ms(value: int | None) -> str:
    if value is None:
        return ""
    # Translators: a duration in milliseconds.
    return gettext("%(ms)s ms") % {"ms": number_format(value, force_grouping=True)}


def format_count(value: int) -> str:
    return number_format(value or 0, force_grouping=True)


def outcome_label(record: AIUsageRecord) -> str:
    return gettext("Success") if record.succeeded else record.outcome


# -- filters -----------------------------------------------------------------------


def users_with_usage(request: HttpRequest | None) -> QuerySet:
    """The users who made calls: the choices of the user filter.

    Read from the daily totals (every call with a user adds to its user's
    ``"user:<id>"`` row, and pruning keeps the totals), not from the
    ledger, which would be a scan of every row on each load. The user asked
    for in the URL is kept, so a link to them always filters.
    """
    user_model = get_user_model()
    scopes = (
        AIUsageTotal.objects.filter(period=AIUsageTotal.Period.DAY)
        .filter(scope__startswith=USER_SCOPE)
        .order_by()
        .values_list("scope", flat=True)
        .distinct()
    )
    ids = {scope.removeprefix(USER_SCOPE) for scope in scopes}
    if request is not None and request.GET.get("user"):
        ids.add(request.GET["user"])
    return user_model._default_manager.filter(
        pk__in=[pk for pk in ids if pk.isdigit()]
    ).order_by(user_model.USERNAME_FIELD)


def configured_choices(field: str) -> list[str]:
    """The aliases, or the models, of the configured chat and embedding
    backends (without reading the ledger)."""
    values: set[str] = set()
    for kind in conf.KIND_KEYS:
        backends = conf.get_backend_settings(kind)
        if not isinstance(backends, Mapping):
            continue  # Reported by manage.py check.
        for alias, backend in backends.items():
            if field == "alias":
                values.add(str(alias))
                continue
            config = backend.get("CONFIG") if isinstance(backend, Mapping) else None
            model_id = config.get("MODEL_ID") if isinstance(config, Mapping) else None
            if isinstance(model_id, str) and model_id:
                values.add(model_id)
    return sorted(values)


def _subclasses(cls: type) -> list[type]:
    return [found for sub in cls.__subclasses__() for found in (sub, *_subclasses(sub))]


def known_choices(field: str) -> list[str]:
    """The choices of ``field`` the report offers whatever the ledger holds:
    the configured aliases and models, the package's feature labels, the
    provider errors' class names."""
    if field in ("alias", "model_id"):
        return configured_choices(field)
    if field == "feature":
        return sorted(FEATURES)
    # outcome: the errors the package records for a failed call.
    return sorted({error.__name__ for error in _subclasses(AIProviderError)})


def sites_for_filter(request: HttpRequest | None) -> QuerySet:
    return Site.objects.order_by("site_name", "hostname", "port")


class NullableModelChoiceFilter(django_filters.ModelChoiceFilter):
    """A model choice with a "none" choice (``null_label``): calls without a
    site or a user."""


class NullableModelChoiceFilterAdapter(ModelChoiceFilterAdapter):
    """The active filter's pill says "No site", not the ``null`` of the URL."""

    def get_active_filters(self) -> Any:
        if self.value == self.filter.null_value:
            yield ActiveFilter(
                self.bound_field.auto_id,
                self.filter.label,
                str(self.filter.extra["null_label"]),
                self.get_url_without_filter_param(self.name),
            )
        else:
            yield from super().get_active_filters()


register_filter_adapter_class(
    NullableModelChoiceFilter, NullableModelChoiceFilterAdapter
)


class UsageFilterSet(WagtailFilterSet):
    """The report's filters. The alias, model, feature and outcome choices
    come from the settings and the package (:func:`known_choices`), the
    users from the daily totals: none of them reads the ledger."""

    created_at = django_filters.DateFromToRangeFilter(
        label=_("Date"), widget=DateRangePickerWidget
    )
    site = NullableModelChoiceFilter(
        label=_("Site"),
        queryset=sites_for_filter,
        empty_label=_("All sites"),
        null_label=_("No site"),
    )
    user = NullableModelChoiceFilter(
        label=_("User"),
        queryset=users_with_usage,
        empty_label=_("Anyone"),
        null_label=_("No user"),
    )
    kind = django_filters.ChoiceFilter(
        label=_("Kind"), choices=AIUsageRecord.Kind.choices, empty_label=_("All")
    )
    alias = django_filters.ChoiceFilter(label=_("Alias"), empty_label=_("All"))
    model_id = django_filters.ChoiceFilter(label=_("Model"), empty_label=_("All"))
    feature = django_filters.ChoiceFilter(label=_("Feature"), empty_label=_("All"))
    outcome = django_filters.ChoiceFilter(
        label=_("Outcome"), method="filter_outcome", empty_label=_("All")
    )

    class Meta:
        model = AIUsageRecord
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Not DISTINCT over the ledger: that read the whole table (four
        # times) on every load of the report. A value asked for in the URL
        # (a breakdown's link to an alias no longer configured, a label of
        # the site's own code) is kept, so that it still filters.
        for name in ("alias", "model_id", "feature", "outcome"):
            values = known_choices(name)
            asked = self.data.get(name) if self.data is not None else None
            if asked and asked not in values and asked not in (SUCCESS, ANY_ERROR):
                values = sorted([*values, asked])
            choices: list[tuple[str, Any]] = [(value, value) for value in values]
            if name == "outcome":
                first = [(SUCCESS, _("Success")), (ANY_ERROR, _("Any error"))]
                choices = [*first, *choices]
            self.filters[name].extra["choices"] = choices

    def filter_outcome(
        self, queryset: QuerySet, name: str, value: str
    ) -> QuerySet[AIUsageRecord]:
        if value == ANY_ERROR:
            return queryset.exclude(outcome=SUCCESS)
        return queryset.filter(outcome=value)


# -- totals, chart, breakdowns ---------------------------------------------------------


@dataclass
class Figures:
    """Calls, errors, tokens and cost of a set of rows (all of them, a day,
    a site, ...). ``cost`` is the sum of the known costs."""

    calls: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Figures:
        return cls(
            calls=row["calls"] or 0,
            errors=row["errors"] or 0,
            prompt_tokens=row["prompt_sum"] or 0,
            completion_tokens=row["completion_sum"] or 0,
            cost=Decimal(row["cost_sum"] or 0),
        )

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost_display(self) -> str:
        return format_usd(self.cost)

    @property
    def calls_display(self) -> str:
        return format_count(self.calls)

    @property
    def errors_display(self) -> str:
        return format_count(self.errors)

    @property
    def tokens_display(self) -> str:
        return format_count(self.tokens)


@dataclass
class Totals(Figures):
    #: Calls whose cost LiteLLM did not know (not counted in ``cost``).
    unknown_cost_calls: int = 0


def totals_of(queryset: QuerySet[AIUsageRecord]) -> Totals:
    """The figures of the filtered rows, in one aggregate query."""
    row = queryset.order_by().aggregate(
        **AGGREGATES, unknown_cost_calls=Count("pk", filter=Q(cost__isnull=True))
    )
    figures = Figures.from_row(row)
    return Totals(**vars(figures), unknown_cost_calls=row["unknown_cost_calls"])


#: The chart's drawing space (SVG user units); each day is a slot of
#: ``SLOT`` units with a bar of ``BAR`` units in it.
CHART_HEIGHT = 100
SLOT = 10
BAR = 8


def _units(value: float) -> str:
    # SVG attributes are written unlocalized ("12.5", never "12,5").
    return f"{value:.2f}"


@dataclass
class ChartDay(Figures):
    day: datetime.date | None = None
    #: Geometry in the chart's user units, as SVG attribute values.
    x: str = ""
    cost_y: str = ""
    cost_height: str = ""
    success_y: str = ""
    success_height: str = ""
    errors_y: str = ""
    errors_height: str = ""

    @property
    def day_display(self) -> str:
        return date_format(self.day, "DATE_FORMAT")

    @property
    def description(self) -> str:
        """The day's figures in words (the bars' tooltips)."""
        calls = ngettext("%(count)s call", "%(count)s calls", self.calls) % {
            "count": self.calls_display
        }
        errors = ngettext("%(count)s error", "%(count)s errors", self.errors) % {
            "count": self.errors_display
        }
        # Translators: one day's figures, "Nov. 2, 2026: $1.20, 14 calls, 2 errors".
        return gettext("%(day)s: %(cost)s, %(calls)s, %(errors)s") % {
            "day": self.day_display,
            "cost": self.cost_display,
            "calls": calls,
            "errors": errors,
        }


@dataclass
class Chart:
    days: list[ChartDay]
    max_cost: Decimal
    max_calls: int
    #: True when the range was longer than :data:`MAX_CHART_DAYS`.
    truncated: bool

    @property
    def width(self) -> str:
        return str(len(self.days) * SLOT)

    height = str(CHART_HEIGHT)
    bar_width = str(BAR)

    @property
    def first(self) -> ChartDay:
        return self.days[0]

    @property
    def last(self) -> ChartDay:
        return self.days[-1]

    @property
    def max_cost_display(self) -> str:
        return format_usd(self.max_cost)

    @property
    def max_calls_display(self) -> str:
        return format_count(self.max_calls)


def _height(value: Decimal | int, highest: Decimal | int) -> float:
    if not value or not highest:
        return 0.0
    # A day with any use keeps a visible bar, however small next to the
    # busiest day (its figures are in the table and the tooltip).
    return max(float(value) / float(highest) * CHART_HEIGHT, 0.5)


def chart_of(
    queryset: QuerySet[AIUsageRecord],
    start: datetime.date | None = None,
    stop: datetime.date | None = None,
) -> Chart | None:
    """Cost and calls per day from ``start`` to ``stop`` (inclusive; where
    one is missing, the first or last day with calls), days without calls
    included. ``None`` when there is nothing to draw."""
    rows = (
        queryset.order_by()
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(**AGGREGATES)
        .order_by("day")
    )
    per_day = {row["day"]: Figures.from_row(row) for row in rows}
    start = start or min(per_day, default=None)
    stop = stop or max(per_day, default=None)
    if start is None or stop is None or start > stop:
        return None
    truncated = (stop - start).days + 1 > MAX_CHART_DAYS
    if truncated:
        start = stop - datetime.timedelta(days=MAX_CHART_DAYS - 1)
    days = [
        ChartDay(day=start + datetime.timedelta(days=offset))
        for offset in range((stop - start).days + 1)
    ]
    for day in days:
        figures = per_day.get(day.day)
        if figures:
            vars(day).update(vars(figures))
    max_cost = max(day.cost for day in days)
    max_calls = max(day.calls for day in days)
    for index, day in enumerate(days):
        day.x = _units(index * SLOT + (SLOT - BAR) / 2)
        cost = _height(day.cost, max_cost)
        day.cost_y, day.cost_height = _units(CHART_HEIGHT - cost), _units(cost)
        # Calls are one bar: successes at the bottom, errors stacked on top.
        successes = _height(day.calls - day.errors, max_calls)
        errors = _height(day.errors, max_calls)
        day.success_y = _units(CHART_HEIGHT - successes)
        day.success_height = _units(successes)
        day.errors_y = _units(CHART_HEIGHT - successes - errors)
        day.errors_height = _units(errors)
    return Chart(days=days, max_cost=max_cost, max_calls=max_calls, truncated=truncated)


@dataclass
class Group(Figures):
    """One row of a breakdown."""

    label: str = ""
    #: The report filtered on this group (``None``: the filters cannot
    #: select it, such as calls without a feature label).
    url: str | None = None


@dataclass
class Breakdown:
    key: str
    heading: str
    groups: list[Group]
    #: More groups exist than are shown.
    more: bool


#: (filter name, field grouped by, heading), in the order shown.
BREAKDOWNS = [
    ("site", "site_id", _("By site")),
    ("alias", "alias", _("By alias")),
    ("model_id", "model_id", _("By model")),
    ("feature", "feature", _("By feature")),
]


def breakdowns_of(
    queryset: QuerySet[AIUsageRecord], filter_url: Any = None
) -> list[Breakdown]:
    """The top :data:`BREAKDOWN_SIZE` sites, aliases, models and features by
    cost (then calls), one aggregate query each. ``filter_url(name, value)``
    gives the report's URL with one more filter."""
    result = []
    for name, field, heading in BREAKDOWNS:
        rows = list(
            queryset.order_by()
            .values(field)
            .annotate(**AGGREGATES)
            .order_by(F("cost_sum").desc(nulls_last=True), "-calls", field)[
                : BREAKDOWN_SIZE + 1
            ]
        )
        more = len(rows) > BREAKDOWN_SIZE
        rows = rows[:BREAKDOWN_SIZE]
        sites = (
            Site.objects.in_bulk([row[field] for row in rows if row[field]])
            if name == "site"
            else {}
        )
        groups = []
        for row in rows:
            value = row[field]
            if name == "site":
                site = sites.get(value)
                label = str(site) if site else gettext("No site")
                filter_value = value if site else "null"
            elif value:
                label = filter_value = value
            else:
                # Translators: a call made without a feature label.
                label, filter_value = gettext("(none)"), None
            url = (
                filter_url(name, filter_value)
                if filter_url and filter_value is not None
                else None
            )
            groups.append(Group(**vars(Figures.from_row(row)), label=label, url=url))
        result.append(
            Breakdown(key=name, heading=str(heading), groups=groups, more=more)
        )
    return result


@dataclass
class Summary:
    totals: Totals
    chart: Chart | None
    breakdowns: list[Breakdown]


# -- the report ----------------------------------------------------------------------


def _utc(value: datetime.datetime) -> datetime.datetime:
    """A naive UTC time (the spreadsheets' times); naive values (USE_TZ
    off) are kept as they are."""
    if timezone.is_naive(value):
        return value
    return timezone.make_naive(value, datetime.UTC)


class _Chunked:
    """A queryset iterated in chunks (``QuerySet.iterator``), with the
    ``model`` the spreadsheet export reads its headings from."""

    def __init__(self, queryset: QuerySet) -> None:
        self.model = queryset.model
        self.queryset = queryset

    def __iter__(self) -> Any:
        return self.queryset.iterator(chunk_size=2000)


def _local_day(value: datetime.datetime) -> datetime.date:
    return (timezone.localtime(value) if timezone.is_aware(value) else value).date()


class UsageReportView(ReportView):
    """Reports › AI usage, behind the ``view_ai_usage_report`` permission."""

    template_name = "wagtail_vector_index/usage/report.html"
    results_template_name = "wagtail_vector_index/usage/report_results.html"
    page_title = _("AI usage")
    header_icon = "decimal"
    model = AIUsageRecord
    verbose_name = _("call")
    verbose_name_plural = _("calls")
    filterset_class = UsageFilterSet
    index_url_name = "wagtail_vector_index:usage_report"
    index_results_url_name = "wagtail_vector_index:usage_report_results"
    default_ordering = "-created_at"
    columns = [
        DateColumn("created_at", label=_("When"), sort_key="created_at"),
        Column("kind", label=_("Kind"), accessor="get_kind_display"),
        Column("alias", label=_("Alias")),
        Column("model_id", label=_("Model")),
        Column("site", label=_("Site")),
        UserColumn("user", label=_("User")),
        Column("feature", label=_("Feature")),
        NumberColumn("prompt_tokens", label=_("Prompt tokens")),
        NumberColumn("completion_tokens", label=_("Completion tokens")),
        Column(
            "cost",
            label=_("Cost"),
            accessor=lambda record: format_usd(record.cost),
            sort_key="cost",
        ),
        Column(
            "latency",
            label=_("Latency"),
            accessor=lambda record: format_ms(record.latency_ms),
            sort_key="latency_ms",
        ),
        Column(
            "time_to_first_token",
            label=_("Time to first token"),
            accessor=lambda record: format_ms(record.time_to_first_token_ms),
        ),
        StatusTagColumn(
            "outcome",
            label=_("Outcome"),
            accessor=outcome_label,
            primary=lambda record: not record.succeeded,
        ),
    ]
    # Never the prompt or the answer (kept only when STORE_PROMPTS asks).
    list_export = [
        "created_at",
        "kind",
        "alias",
        "model_id",
        "site",
        "user",
        "feature",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cost",
        "latency_ms",
        "time_to_first_token_ms",
        "streamed",
        "stopped_early",
        "input_count",
        "attempt",
        "outcome",
        "error_message",
    ]
    export_headings = {
        "created_at": _("When (UTC)"),
        "kind": _("Kind"),
        "alias": _("Alias"),
        "model_id": _("Model"),
        "site": _("Site"),
        "user": _("User"),
        "feature": _("Feature"),
        "prompt_tokens": _("Prompt tokens"),
        "completion_tokens": _("Completion tokens"),
        "total_tokens": _("Total tokens"),
        "cost": _("Cost (USD)"),
        "latency_ms": _("Latency (ms)"),
        "time_to_first_token_ms": _("Time to first token (ms)"),
        "streamed": _("Streamed"),
        "stopped_early": _("Stopped early"),
        "input_count": _("Inputs"),
        "attempt": _("Attempt"),
        "outcome": _("Outcome"),
        "error_message": _("Error"),
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.custom_field_preprocess = {
            **self.custom_field_preprocess,
            # In UTC for both formats (as stored, when USE_TZ is off).
            "created_at": {
                self.FORMAT_CSV: lambda value: _utc(value).strftime(
                    "%Y-%m-%d %H:%M:%S"
                ),
                self.FORMAT_XLSX: _utc,
            },
        }

    def as_spreadsheet(self, queryset: QuerySet, spreadsheet_format: str) -> Any:
        # A year's ledger can be millions of rows: read them in chunks rather
        # than all at once into the queryset's cache.
        return super().as_spreadsheet(_Chunked(queryset), spreadsheet_format)

    def dispatch(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        # A 403, not Wagtail's redirect to the dashboard (see ``forbidden``).
        if not request.user.has_perm(USAGE_REPORT_PERMISSION):
            return forbidden(request)
        return super().dispatch(request, *args, **kwargs)

    def get_base_queryset(self) -> QuerySet[AIUsageRecord]:
        # The user column shows avatars: their profiles come in the same query.
        return AIUsageRecord.objects.select_related(
            "site", "user", "user__wagtail_userprofile"
        )

    def get_filename(self) -> str:
        return f"ai-usage-{_local_day(timezone.now()):%Y-%m-%d}"

    def chart_range(self) -> tuple[datetime.date | None, datetime.date | None]:
        """The days of the date filter, when it has them."""
        if not (self.filters and self.filters.is_valid()):
            return None, None
        value = self.filters.form.cleaned_data.get("created_at")
        if not value:
            return None, None
        return (
            _local_day(value.start) if value.start else None,
            _local_day(value.stop) if value.stop else None,
        )

    def filter_url(self, name: str, value: Any) -> str:
        """This report with the current filters and ``name=value``."""
        query = self.request.GET.copy()
        for key in (self.page_kwarg, "export", "_w_filter_fragment"):
            query.pop(key, None)
        query[name] = str(value)
        return f"{self.index_url}?{urlencode(sorted(query.items()))}"

    def get_summary(self) -> Summary:
        rows = self.object_list
        return Summary(
            totals=totals_of(rows),
            chart=chart_of(rows, *self.chart_range()),
            breakdowns=breakdowns_of(rows, self.filter_url),
        )

    def get_context_data(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if self.is_export:
            # A download needs the rows only: no table, no summary, and no
            # count of an unpaginated listing (which reads every row first).
            return {"object_list": self.object_list}
        context = super().get_context_data(*args, **kwargs)
        context["summary"] = self.get_summary()
        return context
