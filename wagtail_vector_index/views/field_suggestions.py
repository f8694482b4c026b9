"""The endpoint of ``AIFieldPanel``: alternatives for one text field.

The browser posts the edit form as it stands (unsaved changes included)
with the field's name, the model, and the object (or, for a new page, its
parent). The form is bound with Wagtail's own form class, so rich text and
StreamField values are read by their widgets as a save would read them;
nothing is saved. The text of the form's text fields becomes the prompt's
``{content}``. The prompt, the number of alternatives and the field's bound
come from the panel declared on the model, never from the request.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import models
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from wagtail_vector_index import editor_prompts
from wagtail_vector_index.i18n import language_name
from wagtail_vector_index.redaction import get_logger
from wagtail_vector_index.views.editor import (
    EditorEndpoint,
    EditorRefusal,
    bind_unsaved,
    posted_int,
)

logger = get_logger(__name__)

NOT_FOUND = _("The page or object being edited was not found.")
NO_PANEL = _("This field does not offer AI suggestions.")
NOT_ALLOWED = _("You cannot edit this page or object.")
NO_SUGGESTIONS = _("The AI gave no usable suggestion. Try again.")
UNREADABLE_FORM = _(
    "The content of the form could not be read. Reload the page and try again."
)

#: Field types whose text is not content (identifiers, addresses).
NOT_CONTENT = (models.SlugField, models.URLField, models.EmailField)


def _text_fields(model: type[models.Model], form: Any) -> list[str]:
    """The names of the form's fields that hold text of ``model``."""
    from wagtail.fields import RichTextField, StreamField

    names = []
    for name in form.fields:
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if isinstance(field, NOT_CONTENT):
            continue
        if isinstance(
            field, models.CharField | models.TextField | RichTextField | StreamField
        ):
            names.append(name)
    return names


def content_of(instance: models.Model, form: Any) -> str:
    """The text of ``instance`` (updated from the bound ``form``), one line
    per field, cut to :data:`editor_prompts.CONTENT_LIMIT` characters."""
    from wagtail.fields import StreamField

    from wagtail_vector_index.index import EmbeddingField

    parts = []
    model = type(instance)
    for name in _text_fields(model, form):
        field = model._meta.get_field(name)
        value = getattr(instance, name, None)
        if isinstance(field, StreamField) and value is not None:
            text = " ".join(
                str(piece) for piece in field.stream_block.get_searchable_content(value)
            )
        else:
            text = EmbeddingField(name).get_text(instance)
        text = " ".join(text.split())
        if text:
            parts.append(text)
    return editor_prompts.truncate("\n".join(parts), editor_prompts.CONTENT_LIMIT)


def find_panel(edit_handler: Any, field_name: str) -> Any:
    """The ``AIFieldPanel`` of ``field_name`` in ``edit_handler``, or ``None``."""
    from wagtail_vector_index.panels import AIFieldPanelMixin

    stack = [edit_handler]
    while stack:
        panel = stack.pop()
        if isinstance(panel, AIFieldPanelMixin) and panel.field_name == field_name:
            return panel
        stack.extend(getattr(panel, "children", []))
    return None


class FieldSuggestionsView(EditorEndpoint):
    """POST the edit form plus ``wvi-field``, ``wvi-model``, ``wvi-object``
    (empty for a new page) and ``wvi-parent`` (a new page's parent);
    answer ``{"ok": true, "alternatives": [...], "prompt": ..., "max_length": ...}``."""

    def validate(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        from wagtail.models import Page, Site

        post = request.POST
        try:
            model = apps.get_model(post.get("wvi-model", ""))
        except (LookupError, ValueError):
            raise EditorRefusal(gettext(str(NOT_FOUND)), status=404) from None
        self.model = model
        object_id = post.get("wvi-object", "")
        user = request.user
        self.parent = None
        if issubclass(model, Page):
            if object_id:
                page = Page.objects.filter(pk=posted_int(object_id)).first()
                page = page.specific if page else None
                if not isinstance(page, model):
                    raise EditorRefusal(gettext(str(NOT_FOUND)), status=404)
                if not page.permissions_for_user(user).can_edit():
                    raise EditorRefusal(gettext(str(NOT_ALLOWED)), status=403)
                self.instance = page
                self.parent = page.get_parent()
                model = self.model = type(page)
            else:
                parent = Page.objects.filter(
                    pk=posted_int(post.get("wvi-parent"))
                ).first()
                if parent is None:
                    raise EditorRefusal(gettext(str(NOT_FOUND)), status=404)
                parent = parent.specific
                if not parent.permissions_for_user(user).can_add_subpage():
                    raise EditorRefusal(gettext(str(NOT_ALLOWED)), status=403)
                self.instance = model(locale=parent.locale)
                self.parent = parent
            self.site = (self.parent or self.instance).get_site()
            edit_handler = model.get_edit_handler()
        else:
            from wagtail.permission_policies import ModelPermissionPolicy

            action = "change" if object_id else "add"
            if not ModelPermissionPolicy(model).user_has_permission(user, action):
                raise EditorRefusal(gettext(str(NOT_ALLOWED)), status=403)
            if object_id:
                try:
                    self.instance = model._default_manager.get(pk=object_id)
                except (ObjectDoesNotExist, ValueError, TypeError):
                    raise EditorRefusal(gettext(str(NOT_FOUND)), status=404) from None
            else:
                self.instance = model()
            self.site = Site.find_for_request(request)
            viewset = getattr(model, "snippet_viewset", None)
            if viewset is not None:
                edit_handler = viewset.get_edit_handler()
            else:
                from wagtail.admin.panels import get_edit_handler

                edit_handler = get_edit_handler(model)
        if self.site is None:
            self.site = Site.find_for_request(request)
        self.field_name = post.get("wvi-field", "")
        self.panel = find_panel(edit_handler, self.field_name)
        if self.panel is None:
            raise EditorRefusal(gettext(str(NO_PANEL)), status=400)
        self.edit_handler = edit_handler
        try:
            self.prompt = editor_prompts.get_prompt(self.panel.prompt, self.site)
        except editor_prompts.UnknownEditorPromptError as error:
            raise EditorRefusal(str(error), status=400) from None

    def bound_instance(self, request: HttpRequest) -> Any:
        """The object with the form's values (not saved), and the form."""
        from wagtail.models import Page

        kwargs = {"parent_page": self.parent} if issubclass(self.model, Page) else {}
        try:
            form = bind_unsaved(
                request, self.edit_handler.get_form_class(), self.instance, **kwargs
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            # A widget that cannot read what was posted (Draftail given
            # something that is not its JSON): not what the editor sends.
            logger.warning("Field suggestions: the posted form could not be read")
            raise EditorRefusal(gettext(str(UNREADABLE_FORM)), status=400) from None
        return form.instance, form

    def max_length(self) -> int:
        if self.panel.max_length:
            return int(self.panel.max_length)
        try:
            field = self.model._meta.get_field(self.field_name)
            if getattr(field, "max_length", None):
                return int(field.max_length)
        except FieldDoesNotExist:
            pass
        return self.prompt.max_length or editor_prompts.FALLBACK_MAX_LENGTH

    def field_label(self, form: Any) -> str:
        try:
            return str(form[self.field_name].label)
        except KeyError:
            return self.field_name.replace("_", " ")

    def language_code(self, instance: Any) -> str:
        """The language of ``instance``'s locale; for an object without one,
        of the site's root page."""
        from django.conf import settings

        try:
            locale = getattr(instance, "locale", None)
        except ObjectDoesNotExist:  # A new translatable object, no locale yet.
            locale = None
        if locale is None and self.site is not None:
            locale = self.site.root_page.locale
        return locale.language_code if locale is not None else settings.LANGUAGE_CODE

    def answer(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        from wagtail_vector_index import ai

        instance, form = self.bound_instance(request)
        language = language_name(self.language_code(instance))
        max_length = self.max_length()
        count = self.panel.alternatives
        text = editor_prompts.render(
            self.prompt.text,
            {
                "content": content_of(instance, form),
                "field": self.field_label(form),
                "max_length": max_length,
                "language": language,
            },
        )
        backend = ai.get_chat_backend(self.prompt.alias, site=self.site).with_usage(
            feature=f"editor: {self.prompt.name}",
            user=request.user,
            site=self.site,
            user_budget=True,
        )
        response = backend.chat(
            messages=[
                {
                    "role": "system",
                    "content": editor_prompts.SYSTEM_PROMPT.format(count=count),
                },
                {"role": "user", "content": text},
            ]
        )
        alternatives = editor_prompts.parse_alternatives(
            response.text, count, max_length
        )
        if not alternatives:
            raise EditorRefusal(gettext(str(NO_SUGGESTIONS)), status=200)
        return {
            "alternatives": alternatives,
            "prompt": self.prompt.name,
            "max_length": max_length,
            "language": language,
        }
