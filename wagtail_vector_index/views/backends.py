"""Admin page "AI backends": every configured alias, its provider,
credentials and circuit state, and a "Check" button per alias.

GET describes the aliases and sends nothing. The button posts to
:class:`BackendCheckView`, which sends the smallest request the alias can
make (counted against the test pages' rate limit and the user's budgets)
and shows the page again with the latency or the error in that row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from wagtail_vector_index import ai, conf, resilience
from wagtail_vector_index.backend_checks import (
    KINDS,
    BackendStatus,
    CheckResult,
    backend_statuses,
    check_backend,
    kind_label,
)
from wagtail_vector_index.views import ratelimit
from wagtail_vector_index.views.base import AIPageView


@dataclass
class BackendRow:
    """One alias in the page's table, with the result of its check if it
    was just checked."""

    status: BackendStatus
    result: CheckResult | None = None

    @property
    def circuit_open(self) -> bool:
        return self.status.circuit.state == resilience.OPEN

    @property
    def circuit_half_open(self) -> bool:
        return self.status.circuit.state == resilience.HALF_OPEN

    @property
    def retry_in_seconds(self) -> int | None:
        retry_in = self.status.circuit.retry_in
        return None if retry_in is None else max(1, math.ceil(retry_in))

    @property
    def latency_display(self) -> str:
        if self.result is None or self.result.milliseconds is None:
            return ""
        # Translators: a duration in milliseconds, e.g. "123 ms".
        return gettext("%(milliseconds)s ms") % {
            "milliseconds": round(self.result.milliseconds)
        }


@dataclass
class BackendTable:
    kind: str
    heading: str
    rows: list[BackendRow]

    @property
    def panel_id(self) -> str:
        return f"wvi-backends-{self.kind}"


class BackendsView(AIPageView):
    """GET: a table per kind of backend, a row per alias; no request sent."""

    template_name = "wagtail_vector_index/admin/backends.html"
    page_title = _("AI backends")
    header_icon = "link"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        result: CheckResult | None = kwargs.get("result")
        tables = []
        for kind in KINDS:
            rows = []
            for status in backend_statuses(kind):
                checked = (
                    result is not None
                    and result.kind == kind
                    and result.alias == status.alias
                )
                rows.append(BackendRow(status, result if checked else None))
            tables.append(BackendTable(kind, kind_label(kind), rows))
        context.update(
            tables=tables,
            check_url=reverse("wagtail_vector_index:backends_check"),
            rate_limit=conf.get_test_pages_rate_limit(),
        )
        return context


class BackendCheckView(BackendsView):
    """POST only: check one alias's connection and show the page again with
    its latency or its error."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        kind = request.POST.get("kind", "")
        alias = request.POST.get("alias", "")
        if kind not in KINDS or alias not in ai.configured_aliases(kind):
            return self.render_to_response(
                self.get_context_data(
                    error=gettext("There is no such backend to check.")
                ),
                status=400,
            )
        if not ratelimit.take(request.user):
            refused = CheckResult(kind, alias, ok=False, error=ratelimit.message())
            return self.render_to_response(
                self.get_context_data(result=refused), status=429
            )
        result = check_backend(kind, alias, request=request, user_budget=True)
        return self.render_to_response(self.get_context_data(result=result))
