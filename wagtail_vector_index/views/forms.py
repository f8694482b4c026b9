"""Forms of the admin test pages.

Parameter fields are generated from the allow-list in
:mod:`wagtail_vector_index.parameters` and nothing else is read from a
submission, so a forged POST cannot send ``api_key``, ``api_base``, headers
or any other parameter to a provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from wagtail.models import Site

from wagtail_vector_index import ai, conf
from wagtail_vector_index.parameters import (
    SOURCE_SITE_ALIAS,
    EffectiveParameter,
    OutputLimit,
    allowed_for,
    clean_overrides,
    output_limit,
)

MAX_SYSTEM_PROMPT_LENGTH = 10_000
MAX_MESSAGE_LENGTH = 20_000
MAX_TEXTS = 50
MAX_TEXTS_LENGTH = 20_000
MAX_QUERY_LENGTH = 2_000
MAX_SEARCH_RESULTS = 20
DEFAULT_SEARCH_RESULTS = 5

#: Prefixes of the two parameter sets of the chat page (the second one is
#: used in compare mode).
SIDES = ("a", "b")

#: The label of a backend that cannot be built from its settings.
UNUSABLE = _("%(alias)s: cannot be used (run manage.py check)")


def backend_choices(kind: str) -> list[tuple[str, str]]:
    """``(alias, label)`` of the configured backends of ``kind``.

    The label is the backend's ``display_name`` (``"alias: model"``, with
    ``" (offline)"`` for offline backends).
    """
    choices = []
    for alias in ai.configured_aliases(kind):
        backend = ai.get_configured_backend(kind, alias)
        label = backend.display_name if backend else UNUSABLE % {"alias": alias}
        choices.append((alias, label))
    return choices


def default_alias(choices: list[tuple[str, str]]) -> str:
    aliases = [alias for alias, _ in choices]
    if "default" in aliases:
        return "default"
    return aliases[0] if aliases else ""


class SiteChoiceField(forms.ModelChoiceField):
    """The site whose overrides apply; empty for Django settings only."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", Site.objects.order_by("hostname", "port"))
        kwargs.setdefault("required", False)
        kwargs.setdefault("label", _("Site"))
        kwargs.setdefault("empty_label", _("No site: Django settings only"))
        kwargs.setdefault(
            "help_text",
            _("The site's AI settings are merged over the backend's settings."),
        )
        super().__init__(**kwargs)


def reload_select(extra: Mapping[str, str] | None = None) -> forms.Select:
    """A select that reloads the chat page when changed."""
    return forms.Select(
        attrs={"data-action": "change->wvi-chat#reload", **(extra or {})}
    )


class ChatRequestForm(forms.Form):
    """What is sent: the site, the prompts, and whether to compare two sets."""

    site = SiteChoiceField(widget=reload_select())
    system_prompt = forms.CharField(
        label=_("System prompt"),
        required=False,
        max_length=MAX_SYSTEM_PROMPT_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Optional instructions sent before the message."),
    )
    message = forms.CharField(
        label=_("Message"),
        max_length=MAX_MESSAGE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    compare = forms.BooleanField(
        label=_("Compare two parameter sets"),
        required=False,
        help_text=_(
            "Send the message twice, with a second backend or parameters, "
            "and see both answers side by side."
        ),
        widget=forms.CheckboxInput(
            attrs={"data-action": "change->wvi-chat#toggleCompare"}
        ),
    )

    def messages(self) -> list[dict[str, str]]:
        """The conversation to send (valid forms only)."""
        conversation = []
        if self.cleaned_data["system_prompt"].strip():
            conversation.append(
                {"role": "system", "content": self.cleaned_data["system_prompt"]}
            )
        conversation.append({"role": "user", "content": self.cleaned_data["message"]})
        return conversation


def parameter_help(
    spec_help: str,
    parameter: EffectiveParameter | None,
    supported: bool,
    settable: bool = True,
) -> str:
    """Help text saying where a prefilled value comes from."""
    if parameter is None:
        where = gettext("Not set: the model's default applies.")
    elif not settable:
        # Translators: %(source)s is where the value is set, e.g. "Site
        # settings, this backend".
        where = gettext(
            "The backend uses a value from %(source)s that cannot be entered "
            "here; leave the field empty to keep it."
        ) % {"source": parameter.source_label}
    else:
        # Translators: %(source)s is where the value is set, e.g. "Site
        # settings, this backend".
        where = gettext("Current value from %(source)s.") % {
            "source": parameter.source_label
        }
    sentences = [where]
    if not supported:
        sentences.append(gettext("Warning: the model does not support it."))
    sentences.append(str(spec_help))
    return " ".join(sentence for sentence in sentences if sentence)


def settable(spec: Any, value: Any, limit: OutputLimit | None = None) -> bool:
    """Whether ``value`` (from settings, say) passes the admin's validation
    (``limit``: the model's output limit, for ``max_tokens``)."""
    try:
        spec.clean(value, output_limit=limit)
    except ValidationError:
        return False
    return True


class ParameterSetForm(forms.Form):
    """A backend alias and the allow-listed parameters to try with it.

    ``effective`` (from ``backend.effective_parameters()``) prefills each
    field and says in its help text where the value comes from. Where the
    backend's model has a known output limit, ``max_tokens`` is bounded by it.
    """

    alias = forms.ChoiceField(label=_("Backend"), widget=reload_select())

    def __init__(
        self,
        *args: Any,
        kind: str = conf.CHAT,
        choices: list[tuple[str, str]] | None = None,
        backend: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.fields["alias"].choices = (
            choices if choices is not None else backend_choices(kind)
        )
        effective = backend.effective_parameters() if backend is not None else {}
        self.output_limit = output_limit([backend])
        self.specs = allowed_for(kind)
        for name, spec in self.specs.items():
            parameter = effective.get(name)
            supported = backend is None or backend.supports_parameter(name)
            # A value the field would refuse (settings are not limited to the
            # admin's ranges) is not filled in: posting it back would fail.
            ok = parameter is not None and settable(
                spec, parameter.value, self.output_limit
            )
            self.fields[name] = spec.form_field(
                initial=parameter.value if ok else None,
                help_text=parameter_help(
                    spec.help_text, parameter, supported, ok or parameter is None
                ),
                output_limit=self.output_limit,
            )

    def parameter_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.specs]

    def values(self, backend: Any = None) -> dict[str, Any]:
        """The non-empty parameters, validated against the allow-list and the
        output limit of ``backend``'s model (or of the form's backend).

        Raises ``ValidationError`` for a value over that limit: the form may
        have been built without the backend (the streaming endpoint's is).
        """
        values = {
            name: self.cleaned_data.get(name)
            for name in self.specs
            if self.cleaned_data.get(name) not in (None, [], "")
        }
        limit = output_limit([backend]) if backend is not None else self.output_limit
        return clean_overrides(self.kind, values, output_limit=limit)

    def call_parameters(self, backend: Any) -> dict[str, Any]:
        """Keyword arguments for the call: the values that differ from what
        ``backend`` sends anyway (an empty field keeps the backend's value)."""
        effective = backend.effective_parameters()
        return {
            name: value
            for name, value in self.values(backend).items()
            if name not in effective or effective[name].value != value
        }

    def override_values(self, backend: Any) -> dict[str, Any]:
        """The values to store as the site's overrides for this alias: those
        that differ from what the backend gets without them (its settings
        and the site's overrides for all backends)."""
        lower = backend.parameters.values(below=SOURCE_SITE_ALIAS)
        return {
            name: value
            for name, value in self.values(backend).items()
            if name not in lower or lower[name] != value
        }


def split_texts(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


class EmbeddingsTestForm(forms.Form):
    """Texts to embed and compare, and an optional query to rank them by."""

    site = SiteChoiceField()
    alias = forms.ChoiceField(label=_("Backend"))
    texts = forms.CharField(
        label=_("Texts"),
        max_length=MAX_TEXTS_LENGTH,
        widget=forms.Textarea(attrs={"rows": 8}),
    )
    query = forms.CharField(
        label=_("Query"),
        required=False,
        max_length=MAX_QUERY_LENGTH,
        help_text=_("Optional: rank the texts by their similarity to this query."),
    )

    def __init__(
        self, *args: Any, choices: list[tuple[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["alias"].choices = (
            choices if choices is not None else backend_choices(conf.EMBEDDING)
        )
        # Set here: a lazy translation cannot be %-formatted at import time.
        self.fields["texts"].help_text = gettext(
            "One text per line, up to %(texts)s texts and %(characters)s "
            "characters in all."
        ) % {"texts": MAX_TEXTS, "characters": f"{MAX_TEXTS_LENGTH:,}"}

    def clean_texts(self) -> list[str]:
        texts = split_texts(self.cleaned_data["texts"])
        if not texts:
            raise ValidationError(gettext("Enter at least one text."))
        if len(texts) > MAX_TEXTS:
            raise ValidationError(
                gettext("Enter at most %(limit)s texts (you entered %(count)s).")
                % {"limit": MAX_TEXTS, "count": len(texts)}
            )
        return texts

    def clean_query(self) -> str:
        return self.cleaned_data["query"].strip()


def index_label(name: str, index: Any) -> str:
    """``name (Article pages, Books)``: the index and what it covers."""
    try:
        models = [queryset.model for queryset in index.get_querysets()]
    except Exception:  # A custom index that cannot list its querysets now.
        return name
    covered = ", ".join(
        dict.fromkeys(str(capfirst(m._meta.verbose_name_plural)) for m in models)
    )
    return f"{name} ({covered})" if covered else name


def index_choices(indexes: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, label)`` of ``indexes`` (from the registry), by name."""
    return [(name, index_label(name, indexes[name])) for name in sorted(indexes)]


class IndexSearchForm(forms.Form):
    """A query to run against one of the registered vector indexes.

    Its fields are prefixed (``search-query``...) so that it can share a page
    with :class:`EmbeddingsTestForm`.
    """

    prefix = "search"

    index = forms.ChoiceField(
        label=_("Vector index"),
        help_text=_(
            "The project's vector indexes; the Vector indexes page shows "
            "their size and state."
        ),
    )
    query = forms.CharField(
        label=_("Query"),
        max_length=MAX_QUERY_LENGTH,
        help_text=_("Embedded with the index's embedding backend (one provider call)."),
    )
    limit = forms.IntegerField(
        label=_("Results"),
        min_value=1,
        max_value=MAX_SEARCH_RESULTS,
        initial=DEFAULT_SEARCH_RESULTS,
    )
    similarity_threshold = forms.FloatField(
        label=_("Minimum similarity"),
        required=False,
        min_value=-1.0,
        max_value=1.0,
        initial=0.0,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
        help_text=_("From −1 to 1; empty for 0, the default."),
    )

    def __init__(
        self, *args: Any, choices: list[tuple[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.fields["index"].choices = choices or []
        # Set here: a lazy translation cannot be %-formatted at import time.
        self.fields["limit"].help_text = gettext(
            "Objects to show, up to %(limit)s."
        ) % {"limit": MAX_SEARCH_RESULTS}

    def clean_similarity_threshold(self) -> float:
        value = self.cleaned_data["similarity_threshold"]
        return 0.0 if value is None else value
