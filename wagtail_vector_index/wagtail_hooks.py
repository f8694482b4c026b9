"""Wagtail admin integration: the permissions, URLs and menus of the AI pages
(the chat and embeddings test pages, the vector index report, the AI
backends page, Reports › AI usage) and the AI usage panel of the dashboard.

Kept light: nothing here (nor in the views it imports) imports LiteLLM, which
is only loaded when a test page builds or calls a backend.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import include, path, reverse
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.menu import Menu, MenuItem, SubmenuMenuItem

from wagtail_vector_index.views import (
    EDITOR_PERMISSION_CODENAME,
    PERMISSION,
    PERMISSION_CODENAME,
    USAGE_REPORT_PERMISSION,
    USAGE_REPORT_PERMISSION_CODENAME,
    urls,
)
from wagtail_vector_index.views.image_descriptions import editor_js as image_editor_js
from wagtail_vector_index.views.usage_panel import UsagePanel


class AIPageMenuItem(MenuItem):
    """A menu item shown only to users allowed to use the AI test pages."""

    def is_shown(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERMISSION)


class UsageReportMenuItem(MenuItem):
    """Reports › AI usage, shown only to users allowed to see it."""

    def is_shown(self, request: HttpRequest) -> bool:
        return request.user.has_perm(USAGE_REPORT_PERMISSION)


@hooks.register("register_permissions")
def register_permissions() -> QuerySet[Permission]:
    # Shown in the group editor under the models that define them: "AI
    # settings" (the test pages, the editor features) and "AI usage record"
    # (the usage report).
    return Permission.objects.filter(
        content_type__app_label="wagtail_vector_index",
        codename__in=[
            PERMISSION_CODENAME,
            EDITOR_PERMISSION_CODENAME,
            USAGE_REPORT_PERMISSION_CODENAME,
        ],
    )


@hooks.register("register_admin_urls")
def register_admin_urls() -> list[Any]:
    return [
        path(
            "ai/",
            include((urls, "wagtail_vector_index"), namespace="wagtail_vector_index"),
        )
    ]


@hooks.register("register_admin_menu_item")
def register_admin_menu_item() -> MenuItem:
    # A submenu is shown only when one of its items is: without the
    # permission, "AI" does not appear at all.
    menu = Menu(
        items=[
            AIPageMenuItem(
                _("Chat test"),
                reverse("wagtail_vector_index:chat"),
                name="wvi-chat-test",
                icon_name="comment",
                order=100,
            ),
            AIPageMenuItem(
                _("Embeddings test"),
                reverse("wagtail_vector_index:embeddings"),
                name="wvi-embeddings-test",
                icon_name="grid",
                order=200,
            ),
            AIPageMenuItem(
                _("Vector indexes"),
                reverse("wagtail_vector_index:indexes"),
                name="wvi-vector-indexes",
                icon_name="table",
                order=300,
            ),
            AIPageMenuItem(
                _("AI backends"),
                reverse("wagtail_vector_index:backends"),
                name="wvi-ai-backends",
                icon_name="link",
                order=400,
            ),
        ]
    )
    # Translators: the admin menu of the AI test pages (Artificial
    # Intelligence).
    return SubmenuMenuItem(_("AI"), menu, name="wvi-ai", icon_name="cogs", order=850)


@hooks.register("register_reports_menu_item")
def register_usage_report_menu_item() -> MenuItem:
    return UsageReportMenuItem(
        _("AI usage"),
        reverse("wagtail_vector_index:usage_report"),
        name="wvi-ai-usage",
        icon_name="decimal",
        order=1300,
    )


@hooks.register("construct_homepage_panels")
def add_usage_panel(request: HttpRequest, panels: list[Any]) -> None:
    if request.user.has_perm(USAGE_REPORT_PERMISSION):
        panels.append(UsagePanel())


@hooks.register("insert_editor_js")
def insert_image_description_js() -> str:
    # On every editor-like page (the hook has no request); the script acts
    # only on the image edit view, and shows its button only when the server
    # says this user may describe this image.
    return image_editor_js()
