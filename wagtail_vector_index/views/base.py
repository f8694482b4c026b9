"""What every admin test page shares: the permission check and the header."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.urls import get_resolver, get_urlconf
from django.utils.translation import gettext
from django.views.generic import TemplateView
from wagtail.admin.views.generic import WagtailAdminTemplateMixin
from wagtail.models import Site

from wagtail_vector_index import usage
from wagtail_vector_index.redaction import get_logger
from wagtail_vector_index.views import PERMISSION

logger = get_logger(__name__)


def forbidden(request: HttpRequest) -> HttpResponseBase:
    """A 403 response from the project's ``handler403``.

    Raising ``PermissionDenied`` in a Wagtail admin view turns into a
    redirect to the dashboard; the test pages (and the fetch requests of the
    chat page) answer 403 instead, so that a refusal is never mistaken for
    success.
    """
    handler = get_resolver(get_urlconf()).resolve_error_handler(403)
    return handler(request, PermissionDenied())


class AIPagePermissionMixin:
    """Answer 403 to users without the ``use_ai_test_pages`` permission.

    Wagtail's admin URLs already require admin access; the test pages call
    paid providers, so they need their own permission on top (superusers
    have it).
    """

    def dispatch(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        if not request.user.has_perm(PERMISSION):
            return forbidden(request)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class AIPageView(AIPagePermissionMixin, WagtailAdminTemplateMixin, TemplateView):
    """A test page in the Wagtail admin, under "AI" in the breadcrumbs."""

    def get_breadcrumbs_items(self) -> list[dict[str, Any]]:
        return [
            *self.breadcrumbs_items,
            # Translators: the admin menu of the AI test pages (Artificial
            # Intelligence).
            {"url": None, "label": gettext("AI")},
            {"url": None, "label": self.get_page_title()},
        ]


def warn_about_budgets(request: HttpRequest, site: Site | None) -> None:
    """An admin warning for each monthly budget of ``site`` (``None``: calls
    without a site) that has reached ``USAGE["ALERT_THRESHOLD"]``."""
    try:
        status = usage.budget_status(site)
    except Exception:  # The page works without the warning.
        logger.exception("Could not read the AI budgets")
        return
    for budget in status:
        if not budget["alert"]:
            continue
        values = {
            "percent": int(budget["ratio"] * 100),
            "spent": _amount(budget["spent"], budget["unit"]),
            "limit": _amount(budget["limit"], budget["unit"]),
        }
        if site is not None:
            values["site"] = usage.site_name(site)
            # Translators: e.g. "85% of the monthly AI budget of site Main
            # ($8.50 of $10.00) is spent."
            message = gettext(
                "%(percent)s%% of the monthly AI budget of site %(site)s "
                "(%(spent)s of %(limit)s) is spent. Calls stop when it is used up."
            )
        else:
            message = gettext(
                "%(percent)s%% of the monthly AI budget for calls without a site "
                "(%(spent)s of %(limit)s) is spent. Calls stop when it is used up."
            )
        messages.warning(request, message % values)


def _amount(value: Any, unit: str) -> str:
    if unit == usage.USD:
        return gettext("$%(amount)s") % {"amount": f"{float(value):.2f}"}
    return gettext("%(count)s tokens") % {"count": value}


def site_from_query(request: HttpRequest, value: str | None) -> Site | None:
    """The site chosen in a query string: ``None`` for "no site" (an empty
    value), the request's site when the parameter is absent or unknown."""
    if value == "":
        return None
    if value is not None and value.isdigit():
        site = Site.objects.filter(pk=int(value)).first()
        if site is not None:
            return site
    return Site.find_for_request(request)
