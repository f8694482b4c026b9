"""The admin form of the per-site AI settings.

Overrides are stored as JSON (``{scope: {parameter: value}}``) but edited as
typed, validated fields: one group for all backends of a kind and one per
configured alias. Field names are generated, so a forged POST can only ever
set allow-listed parameters of known scopes. Overrides left behind for an
alias removed from settings are shown read-only, flagged, and kept as they
are (the merge ignores them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.validators import MinValueValidator
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.panels import ObjectList, Panel

from wagtail_vector_index import conf
from wagtail_vector_index.parameters import (
    ALL_ALIASES,
    OutputLimit,
    ParameterSpec,
    allowed_for,
    output_limit,
)

KIND_FIELDS = {conf.CHAT: "chat_overrides", conf.EMBEDDING: "embedding_overrides"}
KIND_NAMES = {conf.CHAT: "chat", conf.EMBEDDING: "embedding"}

#: The headings and descriptions of the groups, one sentence per kind so that
#: translators never assemble "chat backend" from parts.
GROUP_TEXTS = {
    conf.CHAT: {
        "all": _("All chat backends"),
        "all_description": _(
            "Used by every chat backend unless the backend's own group below "
            "sets the parameter."
        ),
        "alias": _("Chat backend “%(alias)s”"),
    },
    conf.EMBEDDING: {
        "all": _("All embedding backends"),
        "all_description": _(
            "Used by every embedding backend unless the backend's own group "
            "below sets the parameter."
        ),
        "alias": _("Embedding backend “%(alias)s”"),
    },
}


@dataclass
class OverrideGroup:
    """The fields of one scope (all backends of a kind, or one alias)."""

    kind: str
    scope: str
    heading: str
    description: str = ""
    model_id: str = ""
    removed: bool = False
    field_names: list[str] = field(default_factory=list)


def _configured_aliases(kind: str) -> list[tuple[str, str]]:
    """``(alias, model_id)`` of each usable configured backend of ``kind``."""
    configured = conf.get_backend_settings(kind)
    if not isinstance(configured, dict):
        return []
    aliases = []
    for alias, backend in configured.items():
        config = backend.get("CONFIG", {}) if isinstance(backend, dict) else {}
        model_id = config.get("MODEL_ID", "") if isinstance(config, dict) else ""
        aliases.append((str(alias), str(model_id or "")))
    return aliases


def _unsupported(kind: str, aliases: list[str], name: str) -> list[str]:
    """Model ids among ``aliases`` known not to support parameter ``name``."""
    from wagtail_vector_index import ai

    models = []
    for alias in aliases:
        backend = ai.get_configured_backend(kind, alias)
        if backend is not None and not backend.supports_parameter(name):
            models.append(backend.config.model_id)
    return models


def _output_limit(kind: str, aliases: list[str]) -> OutputLimit | None:
    """The smallest output limit LiteLLM knows among the models of ``aliases``.

    For the "all backends" group that is the smallest of every configured
    model: a value there is sent to each of them.
    """
    from wagtail_vector_index import ai

    return output_limit(ai.get_configured_backend(kind, alias) for alias in aliases)


def _limit_texts(
    spec: ParameterSpec, limit: OutputLimit | None, shared: bool
) -> tuple[str, dict[str, str]]:
    """The help text to add to an output-token field, and its error messages.

    ``shared``: the group's value goes to several backends.
    """
    maximum, message = spec.maximum_for(limit)
    if maximum is None:
        return "", {}
    values = {"maximum": f"{maximum:,}"}
    if limit is None or message is None:
        return " " + gettext("At most %(maximum)s.") % values, {}
    values["model"] = limit.model_id
    if shared:
        also = gettext(
            "This value is sent to every chat backend; set a larger one in a "
            "backend's own group."
        )
        return (
            " "
            + gettext(
                "At most %(maximum)s, the longest answer of %(model)s (the "
                "smallest limit among the chat backends)."
            )
            % values,
            {"max_value": f"{message} {also}"},
        )
    return (
        " " + gettext("At most %(maximum)s, the longest answer of %(model)s.") % values,
        {},
    )


def field_name(kind: str, scope: str, parameter: str) -> str:
    scope_key = "all" if scope == ALL_ALIASES else f"alias-{scope}"
    return f"{KIND_NAMES[kind]}__{scope_key}__{parameter}"


# -- editor prompts ------------------------------------------------------------

#: Blank rows offered for new prompts each time the form is shown.
NEW_PROMPT_ROWS = 2


def prompt_field(prompt_scope: str, key: str, part: str) -> str:
    """``prompt__builtin__title__text``, ``prompt__custom__0__name``..."""
    return f"prompt__{prompt_scope}__{key}__{part}"


@dataclass
class PromptRow:
    """One prompt of the form: a built-in one or a row for the site's own."""

    builtin: bool
    key: str  # The built-in name, or the row's number.
    heading: str
    default_text: str = ""
    field_names: list[str] = field(default_factory=list)
    note: str = ""


class EditorPromptsFormMixin:
    """The editor prompts of :class:`AISettingsForm`: the built-in prompts,
    which a site may change (text, chat alias), and the site's own prompts
    (a slug name, a text and an alias). Packed into
    ``AISettings.editor_prompts`` on clean."""

    fields: dict[str, Any]
    instance: Any

    def _add_prompts(self) -> None:
        from django import forms

        from wagtail_vector_index import editor_prompts

        self.prompt_rows: list[PromptRow] = []
        self._prompt_fields: set[str] = set()
        stored = self.instance.editor_prompts
        stored = stored if isinstance(stored, dict) else {}
        aliases = [alias for alias, _model in _configured_aliases(conf.CHAT)]
        choices = [
            (
                "",
                gettext("Default (“%(alias)s”)")
                % {"alias": editor_prompts.DEFAULT_ALIAS},
            ),
            *(
                (alias, alias)
                for alias in aliases
                if alias != editor_prompts.DEFAULT_ALIAS
            ),
        ]

        def text_field(initial: str, **kwargs: Any) -> forms.Field:
            return forms.CharField(
                required=False,
                initial=initial,
                strip=True,
                widget=forms.Textarea(attrs={"rows": 5}),
                **kwargs,
            )

        def alias_field(initial: str, row: PromptRow) -> forms.Field:
            if initial and initial not in aliases:
                row.note = gettext(
                    "The chat backend “%(alias)s” chosen before is no longer "
                    "configured; the default is used."
                ) % {"alias": initial}
                initial = ""
            return forms.ChoiceField(
                label=_("Chat backend"),
                choices=choices,
                required=False,
                initial=initial if initial in aliases else "",
                help_text=_("The chat backend this prompt is sent to."),
            )

        def add(row: PromptRow, part: str, form_field: forms.Field) -> None:
            name = prompt_field("builtin" if row.builtin else "custom", row.key, part)
            self.fields[name] = form_field
            row.field_names.append(name)
            self._prompt_fields.add(name)

        for name, builtin in editor_prompts.BUILTIN_PROMPTS.items():
            entry = stored.get(name) if isinstance(stored.get(name), dict) else {}
            row = PromptRow(
                builtin=True,
                key=name,
                heading=gettext("Prompt “%(name)s”") % {"name": name},
                default_text=str(builtin.text),
            )
            add(
                row,
                "text",
                text_field(
                    entry.get("text", ""),
                    label=_("Text"),
                    help_text=_("Empty: the default text above."),
                ),
            )
            add(row, "alias", alias_field(entry.get("alias", ""), row))
            self.prompt_rows.append(row)

        own = [
            (name, entry)
            for name, entry in stored.items()
            if name not in editor_prompts.BUILTIN_PROMPTS and isinstance(entry, dict)
        ]
        for number in range(len(own) + NEW_PROMPT_ROWS):
            name, entry = own[number] if number < len(own) else ("", {})
            row = PromptRow(
                builtin=False,
                key=str(number),
                heading=(
                    gettext("Prompt “%(name)s”") % {"name": name}
                    if name
                    else gettext("New prompt")
                ),
            )
            add(
                row,
                "name",
                forms.SlugField(
                    label=_("Name"),
                    required=False,
                    initial=name,
                    max_length=50,
                    help_text=_(
                        "Letters, numbers, hyphens and underscores: what "
                        "AIFieldPanel(prompt=...) names."
                    ),
                ),
            )
            add(row, "text", text_field(entry.get("text", ""), label=_("Text")))
            add(row, "alias", alias_field(entry.get("alias", ""), row))
            if name:
                add(
                    row,
                    "delete",
                    forms.BooleanField(label=_("Delete this prompt"), required=False),
                )
            self.prompt_rows.append(row)

    def _clean_prompts(self, cleaned: dict[str, Any]) -> None:
        from django.core.exceptions import ValidationError

        from wagtail_vector_index import editor_prompts

        packed: dict[str, dict[str, str]] = {}
        for row in self.prompt_rows:
            scope = "builtin" if row.builtin else "custom"

            def name_of(part: str, row: PromptRow = row, scope: str = scope) -> str:
                return prompt_field(scope, row.key, part)

            text = cleaned.get(name_of("text")) or ""
            alias = cleaned.get(name_of("alias")) or ""
            if text:
                try:
                    editor_prompts.validate_text(text)
                except ValidationError as error:
                    self.add_error(name_of("text"), error)  # type: ignore[attr-defined]
            if row.builtin:
                name = row.key
                if text == row.default_text:
                    text = ""  # Unchanged: keep following the translations.
            else:
                if cleaned.get(name_of("delete")):
                    continue
                name = cleaned.get(name_of("name")) or ""
                if not name and not text:
                    continue  # An empty row.
                if not name:
                    self.add_error(  # type: ignore[attr-defined]
                        name_of("name"), gettext("Give the prompt a name.")
                    )
                    continue
                if not text:
                    self.add_error(  # type: ignore[attr-defined]
                        name_of("text"), gettext("Write the prompt's text.")
                    )
                    continue
                if name in editor_prompts.BUILTIN_PROMPTS or name in packed:
                    self.add_error(  # type: ignore[attr-defined]
                        name_of("name"),
                        gettext(
                            "There is already a prompt named “%(name)s”; "
                            "change a built-in prompt in its own group above."
                        )
                        % {"name": name},
                    )
                    continue
            entry = {
                key: value for key, value in (("text", text), ("alias", alias)) if value
            }
            if entry:
                packed[name] = entry
        self.instance.editor_prompts = packed


#: The site's monthly budgets (see wagtail_vector_index.usage), edited above
#: the parameter overrides.
BUDGET_FIELDS = ("monthly_budget_usd", "monthly_budget_tokens")


class AISettingsForm(EditorPromptsFormMixin, WagtailAdminModelForm):
    """Typed fields for every scope, packed into the JSON fields on clean;
    the editor prompts (see :class:`EditorPromptsFormMixin`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A budget below zero means nothing; the USD model field allows it
        # (the tokens field is positive already).
        for name in BUDGET_FIELDS:
            budget = self.fields.get(name)
            if budget is not None and not any(
                isinstance(v, MinValueValidator) for v in budget.validators
            ):
                budget.validators.append(MinValueValidator(0))
                budget.widget.attrs.setdefault("min", "0")
        self.override_groups: list[OverrideGroup] = []
        self._fields_by_name: dict[str, tuple[str, str, str]] = {}
        for kind in (conf.CHAT, conf.EMBEDDING):
            self._add_kind(kind)
        self._add_prompts()

    def _add_kind(self, kind: str) -> None:
        stored = self.instance.overrides(kind)
        configured = _configured_aliases(kind)
        names = [alias for alias, _model in configured]
        texts = GROUP_TEXTS[kind]
        scopes = [
            OverrideGroup(
                kind, ALL_ALIASES, str(texts["all"]), str(texts["all_description"])
            )
        ]
        scopes += [
            OverrideGroup(
                kind, alias, texts["alias"] % {"alias": alias}, model_id=model
            )
            for alias, model in configured
        ]
        scopes += [
            OverrideGroup(
                kind,
                scope,
                texts["alias"] % {"alias": scope},
                gettext(
                    "This alias is no longer in WAGTAIL_VECTOR_INDEX: these "
                    "values are ignored. They are kept in case the alias comes "
                    "back."
                ),
                removed=True,
            )
            for scope in stored
            if scope != ALL_ALIASES and scope not in names
        ]
        for group in scopes:
            values = stored.get(group.scope, {})
            targets = names if group.scope == ALL_ALIASES else [group.scope]
            for parameter, spec in allowed_for(kind).items():
                name = field_name(kind, group.scope, parameter)
                help_text = str(spec.help_text)
                limit, errors = None, {}
                if spec.output_tokens and not group.removed:
                    limit = _output_limit(kind, targets)
                    more_help, errors = _limit_texts(
                        spec, limit, shared=group.scope == ALL_ALIASES
                    )
                    help_text += more_help
                if not group.removed:
                    unsupported = _unsupported(kind, targets, parameter)
                    if unsupported:
                        # Translators: %(models)s lists model ids, %(parameter)s
                        # is a parameter's label in lower case ("top p").
                        warning = gettext(
                            "Warning: %(models)s does not support %(parameter)s; "
                            "it is not sent to that model."
                        ) % {
                            "models": ", ".join(unsupported),
                            "parameter": str(spec.label).lower(),
                        }
                        help_text = f"{warning} {help_text}"
                self.fields[name] = spec.form_field(
                    initial=values.get(parameter),
                    help_text=help_text,
                    disabled=group.removed,
                    output_limit=limit,
                    error_messages=errors,
                )
                group.field_names.append(name)
                self._fields_by_name[name] = (kind, group.scope, parameter)
            self.override_groups.append(group)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        packed: dict[str, dict[str, dict[str, Any]]] = {
            kind: {} for kind in KIND_FIELDS
        }
        for name, (kind, scope, parameter) in self._fields_by_name.items():
            value = cleaned.get(name)
            if value is not None and value != []:
                packed[kind].setdefault(scope, {})[parameter] = value
        for kind, field_name_ in KIND_FIELDS.items():
            setattr(self.instance, field_name_, packed[kind])
        self._clean_prompts(cleaned)
        return cleaned


class ParameterOverridesPanel(Panel):
    """Renders the generated fields of :class:`AISettingsForm`, by scope."""

    def get_form_options(self) -> dict[str, Any]:
        return {"fields": []}

    class BoundPanel(Panel.BoundPanel):
        template_name = "wagtail_vector_index/panels/parameter_overrides.html"

        def get_context_data(self, parent_context: Any = None) -> dict[str, Any]:
            context = super().get_context_data(parent_context)
            groups = []
            for group in getattr(self.form, "override_groups", []):
                groups.append(
                    {
                        "group": group,
                        "fields": [self.form[name] for name in group.field_names],
                        "id": field_name(group.kind, group.scope, "group"),
                    }
                )
            context["groups"] = groups
            return context


class AISettingsObjectList(ObjectList):
    """The settings page's top-level panel.

    Wagtail renders, after the panels, every form field no panel declared
    (meant for hidden fields). The generated override fields are rendered by
    :class:`ParameterOverridesPanel`; rendering them twice would post every
    field twice, and the empty copy would win.
    """

    class BoundPanel(ObjectList.BoundPanel):
        def render_missing_fields(self) -> str:
            declared = set(self.panel.get_form_options().get("fields", []))
            declared |= set(getattr(self.form, "_fields_by_name", {}))
            declared |= getattr(self.form, "_prompt_fields", set())
            return mark_safe(  # noqa: S308 - Django's own rendering of fields
                "".join(
                    str(self.form[name])
                    for name in self.form.fields
                    if name not in declared
                )
            )


class EditorPromptsPanel(Panel):
    """Renders the editor prompt fields of :class:`AISettingsForm`."""

    def get_form_options(self) -> dict[str, Any]:
        return {"fields": []}

    class BoundPanel(Panel.BoundPanel):
        template_name = "wagtail_vector_index/panels/editor_prompts.html"

        def get_context_data(self, parent_context: Any = None) -> dict[str, Any]:
            from wagtail_vector_index import editor_prompts

            context = super().get_context_data(parent_context)
            context["rows"] = [
                {
                    "row": row,
                    "fields": [self.form[name] for name in row.field_names],
                    "id": prompt_field(
                        "builtin" if row.builtin else "custom", row.key, "group"
                    ),
                }
                for row in getattr(self.form, "prompt_rows", [])
            ]
            context["placeholders"] = [
                (f"{{{name}}}", str(text))
                for name, text in editor_prompts.PLACEHOLDERS.items()
            ]
            return context
