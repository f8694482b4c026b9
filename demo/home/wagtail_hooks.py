"""Admin pieces of the demo: the "Generate summary" action on articles."""

from django.urls import path, reverse
from wagtail import hooks
from wagtail.admin.widgets import Button

from home import views


@hooks.register("register_admin_urls")
def register_admin_urls():
    return [
        path(
            "demo/summary/<int:page_id>/",
            views.GenerateSummaryView.as_view(),
            name="demo_generate_summary",
        )
    ]


@hooks.register("register_page_header_buttons")
def summary_button(page, user, view_name=None, next_url=None):
    from home.models import ArticlePage

    if (
        isinstance(page.specific_deferred, ArticlePage)
        and page.permissions_for_user(user).can_edit()
    ):
        yield Button(
            "Generate summary",
            reverse("demo_generate_summary", args=[page.pk]),
            icon_name="wand",
            priority=60,
        )
