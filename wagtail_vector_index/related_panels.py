"""The related pages and "Already published?" panels of the page editor
(public through :mod:`wagtail_vector_index.panels`).

Both find, in the page model's vector index, the live pages of the same site
and locale closest to the page as the editor has it now (unsaved changes
included), through the ``editor_related_pages`` endpoint
(:mod:`wagtail_vector_index.views.related_pages`): an embedding call, no chat
call, recorded in the usage ledger as ``related pages``. They are shown only
to users with the ``use_ai_in_editor`` permission; nothing changes on the
page until the editor clicks "Add".
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import MultipleChooserPanel, Panel

from wagtail_vector_index.views import EDITOR_COMMON_JS, may_use_ai_in_editor

CONTROLLER_JS = "wagtail_vector_index/js/similar-pages-controller.js"


def _check_indexed(panel: Panel) -> None:
    """Refuse a panel on anything but a page model with a vector index, when
    the model's panels are bound (at ``manage.py check`` and on the first
    edit)."""
    from wagtail.models import Page

    from wagtail_vector_index.index.mixins import VectorIndexedMixin

    name = f"{type(panel).__name__} on {panel.model._meta.label}"
    if not issubclass(panel.model, Page):
        raise ImproperlyConfigured(
            f"{name}: similar pages are found for page models only."
        )
    if not issubclass(panel.model, VectorIndexedMixin):
        raise ImproperlyConfigured(
            f"{name}: the model has no vector index. Add VectorIndexedMixin and "
            "embedding_fields to it."
        )


def js_strings() -> dict[str, str]:
    """What the ``wvi-similar-pages`` controller writes, translated."""
    return {
        "searching": gettext("Looking for similar pages…"),
        "noResults": gettext("No similar published pages were found."),
        # Translators: the similarity of a page to the one being edited.
        "similarity": gettext("%(percent)s%% similar"),
        "add": gettext("Add"),
        "added": gettext("Added"),
        "edit": gettext("Edit"),
        "view": gettext("View live"),
        "cannotAdd": gettext(
            "The page could not be added to the list: choose it with the list's "
            "own button."
        ),
        "full": gettext("The list is full: remove a page before adding another."),
        "refused": gettext(
            "The server refused the request (HTTP %(status)s). Reload the page "
            "and try again."
        ),
        # Translators: %(message)s is the browser's description of the error.
        "requestFailed": gettext("The request failed: %(message)s"),
    }


class _SimilarPagesMixin:
    """What both bound panels give their template: whether to show the
    feature, the endpoint and the page being edited."""

    def similar_pages_context(self) -> dict[str, Any]:
        if not may_use_ai_in_editor(self.request):
            return {"enabled": False}
        instance = self.instance
        fields: dict[str, Any] = {"wvi-limit": self.panel.limit}
        if instance is not None and instance.pk:
            fields["wvi-page"] = instance.pk
        else:
            parent = getattr(self.form, "parent_page", None)
            meta = type(instance)._meta
            fields["wvi-parent"] = parent.pk if parent is not None else ""
            fields["wvi-content-type"] = f"{meta.app_label}.{meta.model_name}"
        return {
            "enabled": True,
            "url": reverse("wagtail_vector_index:editor_related_pages"),
            "fields_json": json.dumps(fields),
            "strings_json": json.dumps(js_strings()),
        }

    @property
    def media(self) -> forms.Media:
        return super().media + forms.Media(js=[EDITOR_COMMON_JS, CONTROLLER_JS])


class _SimilarPagesPanel:
    """What both panels share: a ``limit`` kept by ``clone``, and the check
    that the model has a vector index."""

    limit: int

    def clone_kwargs(self) -> dict[str, Any]:
        kwargs = super().clone_kwargs()
        kwargs["limit"] = self.limit
        return kwargs

    def on_model_bound(self) -> None:
        _check_indexed(self)
        super().on_model_bound()


class RelatedPagesPanel(_SimilarPagesPanel, MultipleChooserPanel):
    """A ``MultipleChooserPanel`` of page links with a "Suggest related
    pages" button: the live pages of the site and locale most similar to the
    page being edited (its unsaved content), leaving out the page itself and
    the pages already in the list. "Add" puts a suggestion in the list::

        class RelatedPage(Orderable):
            source = ParentalKey(ArticlePage, related_name="related_pages")
            page = models.ForeignKey("wagtailcore.Page", on_delete=models.CASCADE)

        content_panels = [..., RelatedPagesPanel("related_pages")]

    ``chooser_field_name`` names the child's page field (default ``"page"``);
    ``limit`` the number of suggestions (default 5).
    """

    def __init__(
        self,
        relation_name: str,
        chooser_field_name: str = "page",
        limit: int = 5,
        **kwargs: Any,
    ) -> None:
        self.limit = limit
        super().__init__(relation_name, chooser_field_name=chooser_field_name, **kwargs)

    class BoundPanel(_SimilarPagesMixin, MultipleChooserPanel.BoundPanel):
        template_name = "wagtail_vector_index/panels/related_pages.html"

        def get_context_data(self, parent_context: Any = None) -> dict[str, Any]:
            context = super().get_context_data(parent_context)
            wvi = self.similar_pages_context()
            if wvi["enabled"]:
                wvi["prefix"] = self.formset.prefix
                wvi["page_field"] = self.panel.chooser_field_name
                fields = json.loads(wvi["fields_json"])
                fields["wvi-relation"] = self.formset.prefix
                fields["wvi-page-field"] = self.panel.chooser_field_name
                wvi["fields_json"] = json.dumps(fields)
            context["wvi"] = wvi
            return context


class AlreadyPublishedPanel(_SimilarPagesPanel, Panel):
    """A button "Check for similar published pages": the published pages of
    the same site and locale closest to the draft (its unsaved content),
    with their similarity, so that an editor does not write again what is
    already published. Shown only to users with ``use_ai_in_editor``."""

    def __init__(self, limit: int = 5, **kwargs: Any) -> None:
        kwargs.setdefault("heading", _("Already published?"))
        self.limit = limit
        super().__init__(**kwargs)

    class BoundPanel(_SimilarPagesMixin, Panel.BoundPanel):
        template_name = "wagtail_vector_index/panels/already_published.html"

        def is_shown(self) -> bool:
            return super().is_shown() and may_use_ai_in_editor(self.request)

        def get_context_data(self, parent_context: Any = None) -> dict[str, Any]:
            context = super().get_context_data(parent_context)
            context["wvi"] = self.similar_pages_context()
            return context
