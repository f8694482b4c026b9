"""Which parameters editors may set, how they are validated, and how the
layers of parameters merge, with the source of each value.

Merge order, lowest to highest: ``CONFIG["DEFAULT_PARAMETERS"]`` from
settings, the site's overrides for all backends of the kind, the site's
overrides for the alias, keyword arguments at the call.

Only the parameters in :data:`ALLOWED_PARAMETERS` can come from the admin.
Nothing that redirects traffic or reveals credentials (``api_key``,
``api_base``, ``base_url``, headers, callbacks, ...) is on the list, and
:func:`clean_overrides` drops anything else even if it reached the database
some other way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from wagtail_vector_index import conf

#: The scope key, in stored overrides, of "every backend of this kind".
ALL_ALIASES = "*"

SOURCE_SETTINGS = "settings"
SOURCE_SITE = "site"
SOURCE_SITE_ALIAS = "site-alias"
SOURCE_CALL = "call"

#: The most ``max_tokens`` the admin accepts whatever the model: above every
#: real model's output limit, yet small enough for any provider's integer type
#: (an unbounded field let 10**30 through to the provider).
MAX_OUTPUT_TOKENS = 1_000_000

SOURCE_LABELS = {
    SOURCE_SETTINGS: _("Django settings (DEFAULT_PARAMETERS)"),
    SOURCE_SITE: _("Site settings, all backends"),
    SOURCE_SITE_ALIAS: _("Site settings, this backend"),
    SOURCE_CALL: _("This call"),
}


@dataclass(frozen=True)
class OutputLimit:
    """The longest answer, in tokens, that a model writes (LiteLLM's
    ``max_output_tokens``): the bound of ``max_tokens`` for that model."""

    tokens: int
    model_id: str

    def message(self, label: str) -> str:
        # Translators: %(label)s is a parameter's label ("Max tokens").
        return ngettext(
            "%(label)s can be at most %(tokens)s: model %(model)s writes at "
            "most %(tokens)s token in one answer.",
            "%(label)s can be at most %(tokens)s: model %(model)s writes at "
            "most %(tokens)s tokens in one answer.",
            self.tokens,
        ) % {"label": label, "tokens": f"{self.tokens:,}", "model": self.model_id}


def output_limit(backends: Iterable[Any]) -> OutputLimit | None:
    """The smallest output limit known among ``backends``, or ``None``.

    Each backend is asked ``describe_model(config.model_id)`` (for LiteLLM
    backends: LiteLLM's model map); ``None`` entries and models whose limit is
    unknown are skipped. A value bounded by the result suits every one of
    ``backends`` whose limit is known.
    """
    limits = []
    for backend in backends:
        if backend is None:
            continue
        model_id = backend.config.model_id
        description = backend.describe_model(model_id)
        tokens = getattr(description, "max_output_tokens", None)
        if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0:
            limits.append(OutputLimit(tokens, model_id))
    return min(limits, key=lambda limit: limit.tokens, default=None)


@dataclass(frozen=True)
class ParameterSpec:
    """A parameter an editor may set from the admin."""

    name: str
    label: str
    type: str  # "float", "int" or "stop"
    kinds: frozenset[str]
    minimum: float | None = None
    maximum: float | None = None
    help_text: str = ""
    #: A number of output tokens: also bounded by the model's output limit
    #: (see :class:`OutputLimit`) where that is known.
    output_tokens: bool = False

    def maximum_for(self, limit: OutputLimit | None) -> tuple[Any, str | None]:
        """The upper bound with ``limit`` applied, and the message when
        ``limit`` is what sets it."""
        if self.output_tokens and limit is not None:
            if self.maximum is None or limit.tokens < self.maximum:
                return limit.tokens, limit.message(self.label)
        return self.maximum, None

    def form_field(
        self, *, output_limit: OutputLimit | None = None, **kwargs: Any
    ) -> forms.Field:
        """A typed, optional form field for this parameter.

        With ``output_limit`` an output-token parameter is bounded by the
        model's limit too, and a larger value gets an error naming it.
        """
        options = {"required": False, "label": self.label, "help_text": self.help_text}
        options.update(kwargs)
        if self.type == "float":
            return forms.FloatField(
                min_value=self.minimum, max_value=self.maximum, **options
            )
        if self.type == "int":
            maximum, message = self.maximum_for(output_limit)
            if message:
                options["error_messages"] = {
                    "max_value": message,
                    **options.get("error_messages", {}),
                }
            return forms.IntegerField(
                min_value=self.minimum, max_value=maximum, **options
            )
        return StopSequencesField(**options)

    def clean(self, value: Any, *, output_limit: OutputLimit | None = None) -> Any:
        """``value`` checked against this spec; ``ValidationError`` if wrong.

        ``output_limit`` bounds an output-token parameter by a model's limit.
        """
        if self.type == "stop":
            return clean_stop_sequences(value)
        label = {"label": self.label}
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(gettext("%(label)s must be a number.") % label)
        if self.type == "int":
            if isinstance(value, float) and not value.is_integer():
                raise ValidationError(
                    gettext("%(label)s must be a whole number.") % label
                )
            value = int(value)
        elif not math.isfinite(value):
            raise ValidationError(gettext("%(label)s must be a finite number.") % label)
        if self.minimum is not None and value < self.minimum:
            raise ValidationError(
                gettext("%(label)s must be at least %(minimum)s.")
                % {**label, "minimum": self.minimum}
            )
        maximum, message = self.maximum_for(output_limit)
        if maximum is not None and value > maximum:
            raise ValidationError(
                message
                or gettext("%(label)s must be at most %(maximum)s.")
                % {**label, "maximum": maximum}
            )
        return value


CHAT_ONLY = frozenset({conf.CHAT})
BOTH = frozenset({conf.CHAT, conf.EMBEDDING})

#: The allow-list. Embeddings get ``timeout`` only: ``dimensions`` per site
#: would mix vectors of different sizes in one index.
ALLOWED_PARAMETERS: dict[str, ParameterSpec] = {
    spec.name: spec
    for spec in (
        ParameterSpec(
            "temperature",
            _("Temperature"),
            "float",
            CHAT_ONLY,
            0,
            2,
            _("0 to 2. Lower is more focused, higher more varied."),
        ),
        ParameterSpec(
            "max_tokens",
            _("Max tokens"),
            "int",
            CHAT_ONLY,
            1,
            MAX_OUTPUT_TOKENS,
            _("The longest answer, in tokens."),
            output_tokens=True,
        ),
        ParameterSpec(
            "top_p",
            _("Top p"),
            "float",
            CHAT_ONLY,
            0,
            1,
            _("0 to 1. Nucleus sampling; change this or temperature, not both."),
        ),
        ParameterSpec(
            "presence_penalty",
            _("Presence penalty"),
            "float",
            CHAT_ONLY,
            -2,
            2,
            _("-2 to 2. Positive values favour new topics."),
        ),
        ParameterSpec(
            "frequency_penalty",
            _("Frequency penalty"),
            "float",
            CHAT_ONLY,
            -2,
            2,
            _("-2 to 2. Positive values discourage repetition."),
        ),
        ParameterSpec(
            "seed",
            _("Seed"),
            "int",
            CHAT_ONLY,
            0,
            2**63 - 1,
            _("For repeatable answers where the model supports it."),
        ),
        ParameterSpec(
            "stop",
            _("Stop sequences"),
            "stop",
            CHAT_ONLY,
            help_text=_("Up to 4, one per line. The answer ends before any of them."),
        ),
        ParameterSpec(
            "timeout",
            _("Timeout (seconds)"),
            "float",
            BOTH,
            1,
            600,
            _("1 to 600. How long to wait for the provider."),
        ),
    )
}

MAX_STOP_SEQUENCES = 4
MAX_STOP_SEQUENCE_LENGTH = 100


def clean_stop_sequences(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.splitlines()
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, str) for item in value
    ):
        raise ValidationError(gettext("Stop sequences must be a list of strings."))
    sequences = [item for item in value if item.strip()]
    if len(sequences) > MAX_STOP_SEQUENCES:
        raise ValidationError(
            ngettext(
                "At most %(count)s stop sequence.",
                "At most %(count)s stop sequences.",
                MAX_STOP_SEQUENCES,
            )
            % {"count": MAX_STOP_SEQUENCES}
        )
    if any(len(item) > MAX_STOP_SEQUENCE_LENGTH for item in sequences):
        raise ValidationError(
            gettext("A stop sequence can be at most %(count)s characters.")
            % {"count": MAX_STOP_SEQUENCE_LENGTH}
        )
    return sequences


class StopSequencesField(forms.CharField):
    """Stop sequences typed one per line."""

    widget = forms.Textarea(attrs={"rows": 2})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(value)
        return value

    def clean(self, value: Any) -> list[str] | None:
        text = super().clean(value)
        sequences = clean_stop_sequences(text or "")
        return sequences or None


def allowed_for(kind: str) -> dict[str, ParameterSpec]:
    """The allow-listed parameters for a kind of backend, by name."""
    return {n: s for n, s in ALLOWED_PARAMETERS.items() if kind in s.kinds}


def clean_overrides(
    kind: str,
    values: Any,
    *,
    strict: bool = True,
    output_limit: OutputLimit | None = None,
) -> dict[str, Any]:
    """Validated overrides for one scope, allow-listed parameters only.

    With ``strict``, a parameter that is not allowed or a bad value raises
    ``ValidationError``; without it (reading what is stored) they are dropped.
    ``None`` means "not overridden" and is left out. ``output_limit`` (the
    model's, see :func:`output_limit`) bounds ``max_tokens`` further.
    """
    if not isinstance(values, Mapping):
        if strict:
            raise ValidationError(gettext("Overrides must be a mapping of parameters."))
        return {}
    allowed = allowed_for(kind)
    cleaned: dict[str, Any] = {}
    errors: list[ValidationError] = []
    for name, value in values.items():
        if value is None or value == []:
            continue
        spec = allowed.get(name)
        if spec is None:
            if strict:
                errors.append(
                    ValidationError(
                        gettext('"%(name)s" cannot be set from the admin.')
                        % {"name": name}
                    )
                )
            continue
        try:
            cleaned[name] = spec.clean(value, output_limit=output_limit)
        except ValidationError as error:
            if strict:
                errors.append(error)
    if errors:
        raise ValidationError(errors)
    return cleaned


def clean_stored_overrides(kind: str, stored: Any) -> dict[str, dict[str, Any]]:
    """Stored overrides of a kind (``{scope: {name: value}}``), allow-listed."""
    if not isinstance(stored, Mapping):
        return {}
    return {
        str(scope): cleaned
        for scope, values in stored.items()
        if (cleaned := clean_overrides(kind, values, strict=False))
    }


@dataclass(frozen=True)
class EffectiveParameter:
    """A parameter value a call will send, and where it came from."""

    name: str
    value: Any
    source: str

    @property
    def source_label(self) -> str:
        """Where the value comes from, in words (in the active language)."""
        return str(SOURCE_LABELS[self.source])


#: The layers, lowest first: later ones win.
SOURCES = (SOURCE_SETTINGS, SOURCE_SITE, SOURCE_SITE_ALIAS, SOURCE_CALL)


@dataclass(frozen=True)
class ParameterLayers:
    """The parameters a backend sends, as the layers they come from.

    THE merge of the package: the backend's calls, its
    ``effective_parameters()``, the chat page's prefilled fields and what the
    chat page stores as a site's overrides all read the same layers here.
    """

    settings: Mapping[str, Any] = field(default_factory=dict)
    site: Mapping[str, Any] = field(default_factory=dict)
    site_alias: Mapping[str, Any] = field(default_factory=dict)

    def _layers(self, call: Mapping[str, Any] | None) -> dict[str, Mapping]:
        return {
            SOURCE_SETTINGS: self.settings,
            SOURCE_SITE: self.site,
            SOURCE_SITE_ALIAS: self.site_alias,
            SOURCE_CALL: call or {},
        }

    def effective(
        self, call: Mapping[str, Any] | None = None, *, below: str | None = None
    ) -> dict[str, EffectiveParameter]:
        """The merged parameters with the source of each value; with
        ``below``, only the layers under that source (what a call would send
        without it)."""
        merged: dict[str, EffectiveParameter] = {}
        for source, layer in self._layers(call).items():
            if source == below:
                break
            for name, value in layer.items():
                merged[name] = EffectiveParameter(name, value, source)
        return merged

    def values(
        self, call: Mapping[str, Any] | None = None, *, below: str | None = None
    ) -> dict[str, Any]:
        """The merged values alone (see :meth:`effective`)."""
        return {
            name: parameter.value
            for name, parameter in self.effective(call, below=below).items()
        }


def merge(
    *,
    settings: Mapping[str, Any],
    site: Mapping[str, Any] | None = None,
    site_alias: Mapping[str, Any] | None = None,
    call: Mapping[str, Any] | None = None,
) -> dict[str, EffectiveParameter]:
    """Merge the layers, later ones winning, keeping each value's source."""
    layers = ParameterLayers(settings or {}, site or {}, site_alias or {})
    return layers.effective(call)
