"""Editor features in the Wagtail editor: ``AIFieldPanel`` and its siblings.

``AIFieldPanel`` is a ``FieldPanel`` with a "Suggest" button: the site's
chat backend proposes alternatives for the field from the page's current,
unsaved content, and the editor picks one (or asks again) before anything
changes. ``AITitleFieldPanel`` is the same for a page's title, keeping
Wagtail's title-to-slug behaviour (``TitleFieldPanel``).

Only users with the ``use_ai_in_editor`` permission see the button; the
endpoint (``views/field_suggestions.py``) checks it again, with the rate
limit, the budgets and the usage ledger. Importing this module must stay
cheap (it is imported by models): no backend is built here.

The related pages and "Already published?" panels (``RelatedPagesPanel``,
``AlreadyPublishedPanel``) live in :mod:`wagtail_vector_index.related_panels`
and are importable from here.
"""

from __future__ import annotations

import json
from typing import Any

from django.forms import Media
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext
from wagtail.admin.panels import FieldPanel, TitleFieldPanel

from wagtail_vector_index.related_panels import (  # re-exported
    AlreadyPublishedPanel,
    RelatedPagesPanel,
)
from wagtail_vector_index.views import EDITOR_COMMON_JS, may_use_ai_in_editor

__all__ = [
    "AIFieldPanel",
    "AITitleFieldPanel",
    "AlreadyPublishedPanel",
    "RelatedPagesPanel",
]

#: The most alternatives a panel may ask for in one call.
MAX_ALTERNATIVES = 10

CONTROLLER_JS = "wagtail_vector_index/js/field-suggestions-controller.js"


def js_strings() -> dict[str, str]:
    """The texts the browser writes, translated for the request."""
    return {
        "suggesting": gettext("Asking the AI for suggestions…"),
        "intro": gettext("Suggestions (nothing changes until you choose one):"),
        "use": gettext("Use this"),
        "useLabel": gettext("Use suggestion %(number)s"),
        "tryAgain": gettext("Try again"),
        "cancel": gettext("Cancel"),
        "unchanged": gettext("Same as the current value"),
        "refused": gettext("The request was refused (HTTP %(status)s)."),
        "requestFailed": gettext("The request failed: %(message)s"),
        "applied": gettext("Suggestion applied. Save the page to keep it."),
    }


class AIFieldPanelMixin:
    """What ``AIFieldPanel`` adds to a field panel (see :class:`AIFieldPanel`)."""

    field_name: str

    def __init__(
        self,
        field_name: str,
        *args: Any,
        prompt: str = "title",
        alternatives: int = 3,
        max_length: int | None = None,
        **kwargs: Any,
    ) -> None:
        if (
            not isinstance(alternatives, int)
            or not 1 <= alternatives <= MAX_ALTERNATIVES
        ):
            raise ValueError(
                f"AIFieldPanel({field_name!r}): alternatives must be an integer "
                f"from 1 to {MAX_ALTERNATIVES}, not {alternatives!r}."
            )
        self.prompt = prompt
        self.alternatives = alternatives
        self.max_length = max_length
        super().__init__(field_name, *args, **kwargs)

    def clone_kwargs(self) -> dict[str, Any]:
        return {
            **super().clone_kwargs(),  # type: ignore[misc]
            "prompt": self.prompt,
            "alternatives": self.alternatives,
            "max_length": self.max_length,
        }

    class BoundPanelMixin:
        """Wraps the field in the suggestions controller."""

        panel: Any
        request: Any
        instance: Any
        form: Any
        bound_field: Any
        read_only: bool

        def suggestions_shown(self) -> bool:
            # A form with a prefix is an InlinePanel's child form: the
            # endpoint fills a model's own fields only (check W022).
            return bool(
                self.bound_field is not None
                and not getattr(self, "read_only", False)
                and not getattr(self.form, "prefix", None)
                and may_use_ai_in_editor(self.request)
            )

        @property
        def media(self) -> Media:
            media = super().media  # type: ignore[misc]
            if self.suggestions_shown():
                media += Media(js=[EDITOR_COMMON_JS, CONTROLLER_JS])
            return media

        def suggestion_params(self) -> dict[str, str]:
            model = type(self.instance)
            parent = getattr(self.form, "parent_page", None)
            return {
                "wvi-field": self.panel.field_name,
                "wvi-model": model._meta.label_lower,
                "wvi-object": "" if self.instance.pk is None else str(self.instance.pk),
                "wvi-parent": "" if parent is None else str(parent.pk),
            }

        def render_html(self, parent_context: Any = None) -> str:
            html = super().render_html(parent_context)  # type: ignore[misc]
            if not self.suggestions_shown():
                return html
            return render_to_string(
                "wagtail_vector_index/panels/ai_field_panel.html",
                {
                    "field_html": html,
                    "input_id": self.bound_field.id_for_label,
                    "url": reverse("wagtail_vector_index:field_suggestions"),
                    "params": json.dumps(self.suggestion_params()),
                    "strings": json.dumps(js_strings()),
                    "field_label": self.bound_field.label,
                },
                request=self.request,
            )


class AIFieldPanel(AIFieldPanelMixin, FieldPanel):
    """A ``FieldPanel`` for a text field (``CharField``, ``TextField``) with a
    "Suggest" button.

    ``prompt``: the name of an editor prompt (built in: ``"title"``,
    ``"search_description"``; a site adds its own in Settings › AI
    settings). ``alternatives``: how many suggestions to ask for (1 to 10).
    ``max_length``: the bound given to the model and applied to the
    suggestions when the model field has none (default: the field's
    ``max_length``, else the prompt's own bound, else 300).
    """

    class BoundPanel(AIFieldPanelMixin.BoundPanelMixin, FieldPanel.BoundPanel):
        pass


class AITitleFieldPanel(AIFieldPanelMixin, TitleFieldPanel):
    """:class:`AIFieldPanel` for a page's title: Wagtail's ``TitleFieldPanel``
    (the slug follows the title of a page not yet published) with the
    "Suggest" button."""

    class BoundPanel(AIFieldPanelMixin.BoundPanelMixin, TitleFieldPanel.BoundPanel):
        pass
