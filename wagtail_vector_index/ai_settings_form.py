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


#: The site's monthly budgets (see wagtail_vector_index.usage), edited above
#: the parameter overrides.
BUDGET_FIELDS = ("monthly_budget_usd", "monthly_budget_tokens")


class AISettingsForm(WagtailAdminModelForm):
    """Typed fields for every scope, packed into the JSON fields on clean."""

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
            return mark_safe(  # noqa: S308 - Django's own rendering of fields
                "".join(
                    str(self.form[name])
                    for name in self.form.fields
                    if name not in declared
                )
            )
