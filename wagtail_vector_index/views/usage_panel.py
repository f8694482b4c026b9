"""The dashboard panel "AI usage this month": each site's spending against
its monthly budget.

The figures come from the ``AIUsageTotal`` month rows (``"site:<id>"`` and
``"site:none"``), the same running totals the budget checks read, so the
panel shows what the budgets will act on, without scanning the ledger. A
site's budget is its own (Settings › AI settings) or else the default of
``WAGTAIL_VECTOR_INDEX["USAGE"]``; ``None`` is no limit.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode
from django.utils.translation import gettext
from wagtail.admin.ui.components import Component
from wagtail.models import Site

from wagtail_vector_index import conf
from wagtail_vector_index.models import AISettings, AIUsageTotal
from wagtail_vector_index.views.usage_report import format_count, format_usd

NO_SITE_SCOPE = "site:none"


def month_start(now: datetime.datetime | None = None) -> datetime.date:
    """The first day of the current month in UTC (the budgets' month)."""
    now = now or timezone.now()
    if timezone.is_aware(now):
        now = now.astimezone(datetime.UTC)
    return now.date().replace(day=1)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@dataclass
class Use:
    """What was used of one budget (USD or tokens)."""

    used: Decimal | int
    budget: Decimal | int | None
    #: The budget is the site's own, not the settings' default.
    own: bool
    threshold: float

    @property
    def ratio(self) -> float | None:
        if self.budget is None:
            return None
        if not self.budget:
            return 1.0 if self.used else 0.0
        return float(self.used) / float(self.budget)

    @property
    def status(self) -> str:
        """``"over"``, ``"near"`` (past the alert threshold), ``"ok"`` or
        ``"unlimited"``."""
        ratio = self.ratio
        if ratio is None:
            return "unlimited"
        if ratio >= 1:
            return "over"
        if ratio >= self.threshold:
            return "near"
        return "ok"

    @property
    def percent(self) -> str:
        ratio = self.ratio
        return "" if ratio is None else f"{ratio * 100:.0f}%"

    @property
    def meter_value(self) -> str:
        # An unlocalized attribute value, within the meter's 0..1.
        return f"{min(self.ratio or 0.0, 1.0):.4f}"

    @property
    def meter_low(self) -> str:
        return f"{self.threshold:.4f}"


@dataclass
class UsageUse(Use):
    @property
    def used_display(self) -> str:
        return format_usd(Decimal(self.used))

    @property
    def budget_display(self) -> str:
        return gettext("no limit") if self.budget is None else format_usd(self.budget)


@dataclass
class TokensUse(Use):
    @property
    def used_display(self) -> str:
        return format_count(int(self.used))

    @property
    def budget_display(self) -> str:
        return gettext("no limit") if self.budget is None else format_count(self.budget)


@dataclass
class BudgetRow:
    label: str
    calls: int
    errors: int
    usd: UsageUse
    tokens: TokensUse
    report_url: str

    @property
    def status(self) -> str:
        """The worse of the two budgets' states."""
        order = ["unlimited", "ok", "near", "over"]
        return max(self.usd.status, self.tokens.status, key=order.index)


def budget_rows(now: datetime.datetime | None = None) -> list[BudgetRow]:
    """One row per site, and one for calls without a site when there were
    any or the "no site" budget is set."""
    usage = conf.get_usage_settings()
    threshold = float(usage["ALERT_THRESHOLD"])
    start = month_start(now)
    totals = {
        total.scope: total
        for total in AIUsageTotal.objects.filter(
            period=AIUsageTotal.Period.MONTH, start=start, scope__startswith="site:"
        )
    }
    sites = list(Site.objects.order_by("site_name", "hostname", "port"))
    # Read without creating: AISettings.for_site() would add a row per site.
    own_settings = {
        row.site_id: row for row in AISettings.objects.filter(site__in=sites)
    }
    report = reverse("wagtail_vector_index:usage_report")

    def row(label, total, usd, tokens, own_usd, own_tokens, site_value) -> BudgetRow:
        query = urlencode({"created_at_from": start.isoformat(), "site": site_value})
        return BudgetRow(
            label=label,
            calls=total.calls if total else 0,
            errors=total.errors if total else 0,
            usd=UsageUse(
                used=total.cost if total else Decimal(0),
                budget=_decimal(usd),
                own=own_usd,
                threshold=threshold,
            ),
            tokens=TokensUse(
                used=total.tokens if total else 0,
                budget=None if tokens is None else int(tokens),
                own=own_tokens,
                threshold=threshold,
            ),
            report_url=f"{report}?{query}",
        )

    rows = []
    for site in sites:
        own = own_settings.get(site.pk)
        own_usd = own is not None and own.monthly_budget_usd is not None
        own_tokens = own is not None and own.monthly_budget_tokens is not None
        rows.append(
            row(
                str(site),
                totals.get(f"site:{site.pk}"),
                own.monthly_budget_usd if own_usd else usage["MONTHLY_BUDGET_USD"],
                own.monthly_budget_tokens
                if own_tokens
                else usage["MONTHLY_BUDGET_TOKENS"],
                own_usd,
                own_tokens,
                site.pk,
            )
        )
    no_site = totals.get(NO_SITE_SCOPE)
    no_site_usd = usage["NO_SITE_MONTHLY_BUDGET_USD"]
    no_site_tokens = usage["NO_SITE_MONTHLY_BUDGET_TOKENS"]
    if no_site or no_site_usd is not None or no_site_tokens is not None:
        rows.append(
            row(
                gettext("No site"),
                no_site,
                no_site_usd,
                no_site_tokens,
                False,
                False,
                "null",
            )
        )
    return rows


class UsagePanel(Component):
    """The dashboard panel (added by ``wagtail_hooks`` for users with the
    ``view_ai_usage_report`` permission)."""

    name = "wvi_ai_usage"
    template_name = "wagtail_vector_index/usage/dashboard_panel.html"
    order = 150

    class Media:
        css = {"all": ["wagtail_vector_index/css/wagtail-vector-index.css"]}

    def get_context_data(self, parent_context: Any) -> dict[str, Any]:
        rows = budget_rows()
        start = month_start()
        return {
            "rows": rows,
            # Token columns only where a token budget applies.
            "show_tokens": any(row.tokens.budget is not None for row in rows),
            "month": date_format(start, "YEAR_MONTH_FORMAT"),
            "report_url": reverse("wagtail_vector_index:usage_report")
            + "?"
            + urlencode({"created_at_from": start.isoformat()}),
        }
