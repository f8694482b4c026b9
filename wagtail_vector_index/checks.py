"""System checks for the ``WAGTAIL_VECTOR_INDEX`` setting.

Every mistake gets a stable id, a message naming the alias and key, and a hint
with the fix. The ids are part of the public API: projects silence them with
``SILENCED_SYSTEM_CHECKS``.

Messages and hints go through ``gettext`` when the checks run, each a whole
sentence with named placeholders. What a developer types (setting names and
paths, keys, dotted paths, values) is filled in, never translated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core import checks
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from wagtail_vector_index import conf
from wagtail_vector_index.ai_utils.backends import import_backend_class
from wagtail_vector_index.ai_utils.backends.base import (
    MODEL_PARAMETERS,
    RESERVED_PARAMETERS,
)
from wagtail_vector_index.exceptions import InvalidAIBackendError

ID = "wagtail_vector_index.{}"
SETTING = conf.SETTING_NAME

BACKEND_KEYS = frozenset({"CLASS", "CONFIG"})
CONFIG_KEYS = frozenset(
    {
        "MODEL_ID",
        "DEFAULT_PARAMETERS",
        "TOKEN_LIMIT",
        "EMBEDDING_OUTPUT_DIMENSIONS",
        "BATCH_SIZE",
        "BATCH_TOKEN_LIMIT",
        "MAX_CONCURRENCY",
        "EMBEDDING_BASE64",
        "EMBEDDING_DIRECT",
        "MAX_RETRIES",
        "ATTEMPT_TIMEOUT",
        "FALLBACKS",
        "SUPPORTS_VISION",
    }
)
#: Parameters counting output tokens, bounded by the model's output limit (W004).
OUTPUT_TOKEN_PARAMETERS = ("max_tokens", "max_completion_tokens")

#: Each integer key with the example its E009 hint suggests.
INTEGER_KEYS = {
    "TOKEN_LIMIT": 8191,
    "EMBEDDING_OUTPUT_DIMENSIONS": 1536,
    "BATCH_SIZE": 2048,
    "BATCH_TOKEN_LIMIT": 300_000,
    "MAX_CONCURRENCY": 4,
}


def _where(kind_key: str, alias: str, *keys: str) -> str:
    path = "".join(f'["{key}"]' for key in (alias, *keys))
    return f'{SETTING}["{kind_key}"]{path}'


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


@checks.register("wagtail_vector_index")
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Validate ``WAGTAIL_VECTOR_INDEX``."""
    user = conf.get_user_settings()
    if not isinstance(user, Mapping):
        return [
            checks.Error(
                # Translators: %(setting)s is the name of a Django setting,
                # %(type)s a Python type (list, str).
                _("%(setting)s must be a dict, not %(type)s.")
                % {"setting": SETTING, "type": type(user).__name__},
                hint=_(
                    # Translators: %(setting)s is the name of a Django setting,
                    # %(example)s Python code to copy as it is.
                    "Set %(setting)s = %(example)s, or remove it to use the defaults."
                )
                % {
                    "setting": SETTING,
                    "example": '{"CHAT_BACKENDS": {...}, "EMBEDDING_BACKENDS": {...}}',
                },
                id=ID.format("E001"),
            )
        ]
    messages: list[checks.CheckMessage] = []
    known = {
        *conf.KIND_KEYS.values(),
        conf.TEST_PAGES_RATE_LIMIT_KEY,
        conf.SITE_SETTINGS_CACHE_TIMEOUT_KEY,
        conf.AUTO_UPDATE_KEY,
        conf.STORAGE_KEY,
        conf.USAGE_KEY,
        conf.CIRCUIT_BREAKER_KEY,
        conf.EMBEDDING_CACHE_KEY,
        conf.IMAGE_DESCRIPTION_KEY,
    }
    for key in sorted(set(user) - known):
        messages.append(
            checks.Warning(
                # Translators: %(setting)s is where in the settings (a setting's
                # name, or a path such as WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]),
                # %(key)s a key of it as written there.
                _('%(setting)s has an unknown key "%(key)s".')
                % {"setting": SETTING, "key": key},
                # Translators: %(keys)s is a list of setting keys, such as
                # "CHAT_BACKENDS", "EMBEDDING_BACKENDS".
                hint=_("The known keys are %(keys)s; check the spelling.")
                % {"keys": ", ".join(f'"{k}"' for k in sorted(known))},
                id=ID.format("W003"),
            )
        )
    limit = user.get(conf.TEST_PAGES_RATE_LIMIT_KEY, 0)
    if not conf.is_count(limit):
        messages.append(
            checks.Error(
                _(
                    # Translators: %(setting)s is where in the settings, such as
                    # WAGTAIL_VECTOR_INDEX["TEST_PAGES_RATE_LIMIT"]; %(value)s the
                    # value found there, as Python writes it.
                    "%(setting)s must be a whole number of calls per user per "
                    "minute, not %(value)s."
                )
                % {
                    "setting": f'{SETTING}["{conf.TEST_PAGES_RATE_LIMIT_KEY}"]',
                    "value": repr(limit),
                },
                hint=_("Use a number such as %(example)s, or 0 for no limit.")
                % {"example": conf.DEFAULT_TEST_PAGES_RATE_LIMIT},
                id=ID.format("E013"),
            )
        )
    timeout = user.get(conf.SITE_SETTINGS_CACHE_TIMEOUT_KEY, 0)
    if not conf.is_count(timeout):
        messages.append(
            checks.Error(
                # Translators: %(setting)s is where in the settings, such as
                # WAGTAIL_VECTOR_INDEX["SITE_SETTINGS_CACHE_TIMEOUT"]; %(value)s
                # the value found there, as Python writes it.
                _("%(setting)s must be a whole number of seconds, not %(value)s.")
                % {
                    "setting": f'{SETTING}["{conf.SITE_SETTINGS_CACHE_TIMEOUT_KEY}"]',
                    "value": repr(timeout),
                },
                hint=_(
                    "Use a number such as %(default)s (the default), or 0 to read "
                    "the site's AI settings from the database on every request."
                )
                % {"default": conf.DEFAULT_SITE_SETTINGS_CACHE_TIMEOUT},
                id=ID.format("E016"),
            )
        )
    auto_update = user.get(conf.AUTO_UPDATE_KEY, False)
    if not isinstance(auto_update, bool):
        messages.append(
            checks.Error(
                # Translators: %(setting)s is where in the settings, such as
                # WAGTAIL_VECTOR_INDEX["AUTO_UPDATE"]; %(value)s the value found
                # there, as Python writes it. True and False are Python's.
                _("%(setting)s must be True or False, not %(value)s.")
                % {
                    "setting": f'{SETTING}["{conf.AUTO_UPDATE_KEY}"]',
                    "value": repr(auto_update),
                },
                hint=_(
                    "Set it to True to update vector indexes when content is "
                    "published, unpublished or deleted."
                ),
                id=ID.format("E014"),
            )
        )
    if conf.STORAGE_KEY in user:
        messages.extend(_check_storage(user[conf.STORAGE_KEY]))
    if conf.USAGE_KEY in user:
        messages.extend(_check_usage(user[conf.USAGE_KEY]))
    if conf.CIRCUIT_BREAKER_KEY in user:
        messages.extend(_check_circuit_breaker(user[conf.CIRCUIT_BREAKER_KEY]))
    if conf.EMBEDDING_CACHE_KEY in user:
        messages.extend(_check_embedding_cache(user[conf.EMBEDDING_CACHE_KEY]))
    for kind, kind_key in conf.KIND_KEYS.items():
        configured = conf.get_backend_settings(kind)
        messages.extend(_check_kind(kind, kind_key, configured))
        if isinstance(configured, Mapping):
            messages.extend(_check_fallbacks(kind, kind_key, configured))
    if conf.IMAGE_DESCRIPTION_KEY in user:
        messages.extend(_check_image_description(user[conf.IMAGE_DESCRIPTION_KEY]))
    return messages


def _check_image_description(value: Any) -> list[checks.CheckMessage]:
    """``WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"]``: E034, E035, W013, W014.

    Says which chat alias describes images, and whether its model can take
    them (an alias that cannot is refused at run time, before any request).
    """
    from wagtail_vector_index import ai, image_descriptions

    where = f'{SETTING}["{conf.IMAGE_DESCRIPTION_KEY}"]'
    example = '{"ALIAS": "vision"}'
    usable, messages = _check_dict_setting(
        value,
        where,
        conf.IMAGE_DESCRIPTION_DEFAULTS,
        # Translators: %(example)s is Python code to copy as it is.
        _("Give the image description settings as %(example)s.") % {"example": example},
        "E034",
        "W014",
    )
    if not usable:
        return messages
    prompt = value.get("PROMPT")
    if prompt is not None:
        problem = None
        if not isinstance(prompt, str) or not prompt.strip():
            problem = _("%(setting)s must be a non-empty string, not %(value)s.") % {
                "setting": f'{where}["PROMPT"]',
                "value": repr(prompt),
            }
        else:
            try:
                unknown = image_descriptions.prompt_placeholders(prompt) - (
                    image_descriptions.PLACEHOLDERS
                )
            except ValueError:
                unknown = {"{"}
            if unknown:
                # Translators: %(setting)s is where in the settings;
                # %(names)s the placeholders found there, such as {content}.
                problem = _(
                    "%(setting)s has placeholders that are not known: %(names)s."
                ) % {
                    "setting": f'{where}["PROMPT"]',
                    "names": ", ".join(sorted(f"{{{name}}}" for name in unknown)),
                }
        if problem:
            messages.append(
                checks.Error(
                    problem,
                    # Translators: %(names)s is a list of placeholders, such as
                    # {title}, {language}; "{{" and "}}" are written as they are.
                    hint=_(
                        "A prompt may use %(names)s; write a brace itself as "
                        '"{{" or "}}". Remove PROMPT to use the built-in one.'
                    )
                    % {
                        "names": ", ".join(
                            f"{{{name}}}"
                            for name in sorted(image_descriptions.PLACEHOLDERS)
                        )
                    },
                    id=ID.format("E034"),
                )
            )
    alias = value.get("ALIAS", "default")
    configured = conf.get_backend_settings(conf.CHAT)
    known = sorted(map(str, configured)) if isinstance(configured, Mapping) else []
    if not isinstance(alias, str) or alias not in known:
        messages.append(
            checks.Error(
                # Translators: %(setting)s is where in the settings; %(value)s
                # the value found there, as Python writes it.
                _("%(setting)s is %(value)s, which is not a configured chat alias.")
                % {"setting": f'{where}["ALIAS"]', "value": repr(alias)},
                # Translators: %(configured)s is a list of chat aliases.
                hint=_(
                    "Name a chat alias whose model takes images (configured: "
                    "%(configured)s)."
                )
                % {"configured": ", ".join(known) or _("none")},
                id=ID.format("E034"),
            )
        )
        return messages
    backend = ai.get_configured_backend(conf.CHAT, alias)
    if backend is None:
        return messages  # The alias's own checks say why it cannot be built.
    supports = image_descriptions.vision_support(backend)
    values = {
        "setting": f'{where}["ALIAS"]',
        "alias": alias,
        "model": backend.config.model_id,
        "config": _where(conf.KIND_KEYS[conf.CHAT], alias, "CONFIG"),
    }
    if supports is False:
        messages.append(
            checks.Error(
                # Translators: %(setting)s is where in the settings, %(alias)s
                # a chat alias, %(model)s the name of an AI model.
                _(
                    'Images are described by chat alias "%(alias)s" (%(setting)s), '
                    'but its model "%(model)s" cannot take images.'
                )
                % values,
                # Translators: %(config)s is where in the settings, such as
                # WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["vision"]["CONFIG"].
                hint=_(
                    "Name an alias whose model takes images (such as gpt-4o), "
                    'or, if LiteLLM is wrong about this model, set "SUPPORTS_VISION": '
                    "True in %(config)s. Until then the image editor shows no "
                    "button and describe_images refuses to run."
                )
                % values,
                id=ID.format("E035"),
            )
        )
    elif supports is None:
        messages.append(
            checks.Warning(
                _(
                    'Images are described by chat alias "%(alias)s" (%(setting)s), '
                    'but LiteLLM does not know whether its model "%(model)s" '
                    "takes images."
                )
                % values,
                hint=_(
                    'If it does, set "SUPPORTS_VISION": True in %(config)s; until '
                    "then the image editor shows no button and describe_images "
                    "refuses to run."
                )
                % values,
                id=ID.format("W013"),
            )
        )
    return messages


def _check_dict_setting(
    value: Any,
    where: str,
    known: Iterable[str],
    hint: str,
    error_id: str,
    unknown_id: str,
) -> tuple[bool, list[checks.CheckMessage]]:
    """A setting that must be a dict of ``known`` keys: ``error_id`` (with
    ``hint``) when it is not a dict, ``unknown_id`` for each unknown key.
    Returns whether its keys can be checked further, and the messages."""
    if not isinstance(value, Mapping):
        return False, [
            checks.Error(
                # Translators: %(setting)s is where in the settings;
                # %(type)s a Python type (list, str).
                _("%(setting)s must be a dict, not %(type)s.")
                % {"setting": where, "type": type(value).__name__},
                hint=hint,
                id=ID.format(error_id),
            )
        ]
    known = sorted(known)
    return True, [
        checks.Warning(
            _('%(setting)s has an unknown key "%(key)s".')
            % {"setting": where, "key": key},
            hint=_("The known keys are %(keys)s; check the spelling.")
            % {"keys": ", ".join(f'"{k}"' for k in known)},
            id=ID.format(unknown_id),
        )
        for key in sorted(set(value) - set(known), key=str)
    ]


def _check_circuit_breaker(value: Any) -> list[checks.CheckMessage]:
    """``WAGTAIL_VECTOR_INDEX["CIRCUIT_BREAKER"]``: E028, W011."""
    where = f'{SETTING}["{conf.CIRCUIT_BREAKER_KEY}"]'
    usable, messages = _check_dict_setting(
        value,
        where,
        conf.CIRCUIT_BREAKER_DEFAULTS,
        _("Give the circuit breaker's settings as %(example)s.")
        % {"example": '{"FAILURE_THRESHOLD": 5, "COOLDOWN_SECONDS": 30}'},
        "E028",
        "W011",
    )
    if not usable:
        return messages
    threshold = value.get("FAILURE_THRESHOLD", 5)
    if not conf.is_count(threshold):
        messages.append(
            checks.Error(
                _("%(setting)s must be a whole number of failures, not %(value)s.")
                % {
                    "setting": f'{where}["FAILURE_THRESHOLD"]',
                    "value": repr(threshold),
                },
                hint=_(
                    "Use a number such as 5 (failures in a row that pause an "
                    "alias), or 0 to turn the circuit breaker off."
                ),
                id=ID.format("E028"),
            )
        )
    cooldown = value.get("COOLDOWN_SECONDS", 30)
    if not conf.is_duration(cooldown):
        messages.append(
            checks.Error(
                _("%(setting)s must be a number of seconds above 0, not %(value)s.")
                % {"setting": f'{where}["COOLDOWN_SECONDS"]', "value": repr(cooldown)},
                hint=_(
                    "Use a number such as 30: how long a paused alias is skipped "
                    "before one call tries it again."
                ),
                id=ID.format("E028"),
            )
        )
    return messages


def _check_fallbacks(
    kind: str, kind_key: str, backends: Mapping[str, Any]
) -> list[checks.CheckMessage]:
    """``CONFIG["FALLBACKS"]`` of every alias of a kind: E025 (not a list
    of configured aliases, or a loop), E026 (an embedding fallback of
    another model or dimensions)."""
    messages: list[checks.CheckMessage] = []
    graph: dict[str, list[str]] = {}
    for alias, backend in backends.items():
        config = backend.get("CONFIG") if isinstance(backend, Mapping) else None
        if not isinstance(config, Mapping) or "FALLBACKS" not in config:
            continue
        where = f'{_where(kind_key, str(alias), "CONFIG")}["FALLBACKS"]'
        fallbacks = config["FALLBACKS"]
        if isinstance(fallbacks, str) or not isinstance(fallbacks, (list, tuple)):
            messages.append(
                checks.Error(
                    _("%(setting)s must be a list of aliases, not %(type)s.")
                    % {"setting": where, "type": type(fallbacks).__name__},
                    hint=_("Write it as %(example)s.") % {"example": '["backup"]'},
                    id=ID.format("E025"),
                )
            )
            continue
        graph[str(alias)] = []
        for other in fallbacks:
            if not isinstance(other, str) or other not in backends:
                messages.append(
                    checks.Error(
                        _(
                            "%(setting)s names %(value)s, which is not a "
                            "configured alias."
                        )
                        % {"setting": where, "value": repr(other)},
                        hint=_("The configured aliases are %(known)s.")
                        % {"known": ", ".join(f'"{a}"' for a in sorted(backends))},
                        id=ID.format("E025"),
                    )
                )
                continue
            graph[str(alias)].append(other)
            if kind == conf.EMBEDDING:
                messages.extend(
                    _check_embedding_fallback(
                        where, backends[alias], backends[other], other
                    )
                )
    for alias in sorted(graph):
        loop = _loop_from(alias, graph)
        if loop:
            messages.append(
                checks.Error(
                    _('%(setting)s leads back to "%(alias)s": %(loop)s.')
                    % {
                        "setting": f'{_where(kind_key, alias, "CONFIG")}["FALLBACKS"]',
                        "alias": alias,
                        "loop": " → ".join(loop),
                    },
                    hint=_(
                        "An alias must not fall back to itself, directly or "
                        "through its fallbacks' fallbacks."
                    ),
                    id=ID.format("E025"),
                )
            )
    return messages


def _loop_from(start: str, graph: Mapping[str, list[str]]) -> list[str] | None:
    """A path of fallbacks from ``start`` back to ``start``, if any."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        alias, path = stack.pop()
        for other in graph.get(alias, ()):
            if other == start:
                return [*path, other]
            if other not in seen:
                seen.add(other)
                stack.append((other, [*path, other]))
    return None


def _check_embedding_fallback(
    where: str, backend: Any, fallback: Any, other: str
) -> list[checks.CheckMessage]:
    """E026: an embedding fallback must give vectors of the same space."""

    def described(settings: Any) -> tuple[Any, Any]:
        config = settings.get("CONFIG") if isinstance(settings, Mapping) else None
        config = config if isinstance(config, Mapping) else {}
        model = config.get("MODEL_ID")
        dimensions = config.get("EMBEDDING_OUTPUT_DIMENSIONS")
        if (
            dimensions is None
            and isinstance(model, str)
            and isinstance(settings, Mapping)
        ):
            try:
                backend_class = import_backend_class(
                    settings.get("CLASS"), kind=conf.EMBEDDING, alias=other
                )
            except InvalidAIBackendError:
                return model, None
            description = backend_class.describe_model(model)
            dimensions = (
                description.embedding_output_dimensions if description else None
            )
        return model, dimensions

    model, dimensions = described(backend)
    other_model, other_dimensions = described(fallback)
    if (model, dimensions) == (other_model, other_dimensions):
        return []
    return [
        checks.Error(
            _(
                '%(setting)s names "%(alias)s", whose vectors come from another '
                "model or have other dimensions (%(theirs)s, not %(ours)s)."
            )
            % {
                "setting": where,
                "alias": other,
                "theirs": f"{other_model}, {other_dimensions}",
                "ours": f"{model}, {dimensions}",
            },
            hint=_(
                "An embedding fallback must use the same model with the same "
                "dimensions (the same model at another provider or region): "
                "vectors of another model would be mixed into the indexes."
            ),
            id=ID.format("E026"),
        )
    ]


#: ``USAGE`` keys holding budgets: a number of 0 or more, or ``None``.
BUDGET_KEYS = (
    "MONTHLY_BUDGET_USD",
    "MONTHLY_BUDGET_TOKENS",
    "NO_SITE_MONTHLY_BUDGET_USD",
    "NO_SITE_MONTHLY_BUDGET_TOKENS",
    "USER_DAILY_BUDGET_USD",
    "USER_DAILY_BUDGET_TOKENS",
)


def _check_usage(usage: Any) -> list[checks.CheckMessage]:
    """``WAGTAIL_VECTOR_INDEX["USAGE"]``: E019-E023, W010."""
    where = f'{SETTING}["{conf.USAGE_KEY}"]'
    usable, messages = _check_dict_setting(
        usage,
        where,
        conf.USAGE_DEFAULTS,
        _("Set it to a dict such as %(example)s, or remove it to use the defaults.")
        % {"example": '{"MONTHLY_BUDGET_USD": 50}'},
        "E019",
        "W010",
    )
    if not usable:
        return messages
    for key in BUDGET_KEYS:
        value = usage.get(key)
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or value < 0 or value != value:  # value != value: NaN
            messages.append(
                checks.Error(
                    # Translators: %(setting)s is where in the settings;
                    # %(value)s the value found there, as Python writes it.
                    _("%(setting)s must be a number of 0 or more, not %(value)s.")
                    % {"setting": f'{where}["{key}"]', "value": repr(value)},
                    hint=_(
                        "Use a number such as %(example)s (US dollars or tokens, "
                        "as the key says), or None for no limit."
                    )
                    % {"example": 50 if key.endswith("_USD") else 1_000_000},
                    id=ID.format("E020"),
                )
            )
    threshold = usage.get("ALERT_THRESHOLD", conf.USAGE_DEFAULTS["ALERT_THRESHOLD"])
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float))
        or not 0 < threshold <= 1
    ):
        messages.append(
            checks.Error(
                _(
                    "%(setting)s must be a fraction of the budget above 0 and at "
                    "most 1, not %(value)s."
                )
                % {"setting": f'{where}["ALERT_THRESHOLD"]', "value": repr(threshold)},
                hint=_(
                    "Use a number such as 0.8 (a warning when 80 percent of a "
                    "budget is spent)."
                ),
                id=ID.format("E021"),
            )
        )
    for key in ("RETENTION_DAYS", "PROMPT_RETENTION_DAYS"):
        value = usage.get(key, conf.USAGE_DEFAULTS[key])  # type: ignore[literal-required]
        if not conf.is_count(value):
            messages.append(
                checks.Error(
                    _("%(setting)s must be a whole number of days, not %(value)s.")
                    % {"setting": f'{where}["{key}"]', "value": repr(value)},
                    hint=_("Use a number such as %(example)s.")
                    % {"example": conf.USAGE_DEFAULTS[key]},  # type: ignore[literal-required]
                    id=ID.format("E022"),
                )
            )
    for key in ("ENABLED", "STORE_PROMPTS"):
        value = usage.get(key, conf.USAGE_DEFAULTS[key])  # type: ignore[literal-required]
        if not isinstance(value, bool):
            messages.append(
                checks.Error(
                    _("%(setting)s must be True or False, not %(value)s.")
                    % {"setting": f'{where}["{key}"]', "value": repr(value)},
                    hint=_("Set it to True or False."),
                    id=ID.format("E023"),
                )
            )
    return messages


def _check_embedding_cache(cache: Any) -> list[checks.CheckMessage]:
    """``WAGTAIL_VECTOR_INDEX["EMBEDDING_CACHE"]``: E030-E032, W015."""
    where = f'{SETTING}["{conf.EMBEDDING_CACHE_KEY}"]'
    usable, messages = _check_dict_setting(
        cache,
        where,
        conf.EMBEDDING_CACHE_DEFAULTS,
        _("Set it to a dict such as %(example)s, or remove it to use the defaults.")
        % {"example": '{"MAX_ENTRIES": 100000}'},
        "E030",
        "W015",
    )
    if not usable:
        return messages
    enabled = cache.get("ENABLED", True)
    if not isinstance(enabled, bool):
        messages.append(
            checks.Error(
                _("%(setting)s must be True or False, not %(value)s.")
                % {"setting": f'{where}["ENABLED"]', "value": repr(enabled)},
                hint=_(
                    "Set it to False to send every text to the provider, or "
                    "True (the default) to use the embedding cache."
                ),
                id=ID.format("E031"),
            )
        )
    size = cache.get("MAX_ENTRIES", conf.EMBEDDING_CACHE_DEFAULTS["MAX_ENTRIES"])
    if not _is_positive_int(size):
        messages.append(
            checks.Error(
                _(
                    "%(setting)s must be a whole number of entries above 0, "
                    "not %(value)s."
                )
                % {"setting": f'{where}["MAX_ENTRIES"]', "value": repr(size)},
                hint=_(
                    "Use a number such as %(example)s (an entry of 1,536 "
                    "dimensions takes about 6 KB), or set ENABLED to False."
                )
                % {"example": conf.EMBEDDING_CACHE_DEFAULTS["MAX_ENTRIES"]},
                id=ID.format("E032"),
            )
        )
    return messages


def _check_storage(value: Any) -> list[checks.CheckMessage]:
    where = f'{SETTING}["{conf.STORAGE_KEY}"]'
    hint = _(
        # Translators: %(default)s, %(pgvector)s and %(qdrant)s are dotted paths
        # of Python classes, %(form)s Python code to copy as it is.
        'Use "%(default)s" (the default), "%(pgvector)s" (PostgreSQL with the '
        'pgvector extension) or "%(qdrant)s" (Qdrant, with its CONFIG), as a '
        "dotted path or as %(form)s."
    ) % {
        "default": conf.DATABASE_STORAGE,
        "pgvector": conf.PGVECTOR_STORAGE,
        "qdrant": conf.QDRANT_STORAGE,
        "form": '{"CLASS": "...", "CONFIG": {...}}',
    }
    config: Any = None
    path = value
    if isinstance(value, Mapping):
        path = value.get("CLASS")
        config = value.get("CONFIG", {})
        unknown = sorted(str(key) for key in value if key not in ("CLASS", "CONFIG"))
        if unknown or not isinstance(config, Mapping):
            return [
                checks.Error(
                    # Translators: %(setting)s is where in the settings, such as
                    # WAGTAIL_VECTOR_INDEX["STORAGE"].
                    _(
                        '%(setting)s takes "CLASS" (a dotted path) and "CONFIG" '
                        "(a dict), nothing else."
                    )
                    % {"setting": where},
                    hint=hint,
                    id=ID.format("E015"),
                )
            ]
    if not isinstance(path, str) or not path:
        return [
            checks.Error(
                # Translators: %(setting)s is where in the settings, such as
                # WAGTAIL_VECTOR_INDEX["STORAGE"].
                _("%(setting)s must be a dotted path.") % {"setting": where},
                hint=hint,
                id=ID.format("E015"),
            )
        ]
    try:
        storage_class = import_string(path)
    except ImportError as error:
        return [
            checks.Error(
                # Translators: %(setting)s is where in the settings, such as
                # WAGTAIL_VECTOR_INDEX["STORAGE"]; %(path)s the dotted path
                # found there, %(error)s Python's reason (in English).
                _("%(setting)s %(path)s cannot be imported (%(error)s).")
                % {"setting": where, "path": repr(path), "error": error},
                hint=hint,
                id=ID.format("E015"),
            )
        ]
    # A storage may check its own CONFIG (and what it needs installed).
    check_config = getattr(storage_class, "check_config", None)
    if callable(check_config):
        return list(check_config(dict(config or {})))
    return []


def _check_kind(kind: str, kind_key: str, backends: Any) -> list[checks.CheckMessage]:
    if not isinstance(backends, Mapping):
        return [
            checks.Error(
                # Translators: %(setting)s is where in the settings, such as
                # WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]; %(type)s a Python type
                # (list, str).
                _("%(setting)s must be a dict of backends by alias, not %(type)s.")
                % {
                    "setting": f'{SETTING}["{kind_key}"]',
                    "type": type(backends).__name__,
                },
                # Translators: %(example)s is Python code to copy as it is,
                # %(key)s a setting's key (CHAT_BACKENDS, EMBEDDING_BACKENDS).
                hint=_('Use %(example)s or remove "%(key)s" to use the default.')
                % {
                    "example": '{"default": {"CLASS": "...", "CONFIG": '
                    '{"MODEL_ID": "..."}}}',
                    "key": kind_key,
                },
                id=ID.format("E002"),
            )
        ]
    messages: list[checks.CheckMessage] = []
    if "default" not in backends:
        if backends:
            hint = _(
                # Translators: %(configured)s is a list of backend aliases.
                'Calls that name no alias use "default"; add one or always pass '
                "an alias (configured: %(configured)s)."
            ) % {"configured": ", ".join(sorted(map(str, backends)))}
        else:
            hint = _(
                'Calls that name no alias use "default"; add one or always pass '
                "an alias (configured: none)."
            )
        messages.append(
            checks.Warning(
                # Translators: %(setting)s is where in the settings, such as
                # WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]; "default" is the name
                # of an alias, as written there.
                _('%(setting)s has no "default" alias.')
                % {"setting": f'{SETTING}["{kind_key}"]'},
                hint=hint,
                id=ID.format("W001"),
            )
        )
    for alias, backend in backends.items():
        messages.extend(_check_backend(kind, kind_key, str(alias), backend))
    return messages


def _check_backend(
    kind: str, kind_key: str, alias: str, backend: Any
) -> list[checks.CheckMessage]:
    where = _where(kind_key, alias)
    if not isinstance(backend, Mapping) or "CLASS" not in backend:
        return [
            checks.Error(
                # Translators: %(setting)s is where in the settings, such as
                # WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"].
                _('%(setting)s must be a dict with a "CLASS" key.')
                % {"setting": where},
                # Translators: %(example)s is Python code to copy as it is.
                hint=_("Give the backend as %(example)s.")
                % {
                    "example": '{"CLASS": "dotted.path.To.Backend", '
                    '"CONFIG": {"MODEL_ID": "..."}}'
                },
                id=ID.format("E003"),
            )
        ]
    messages: list[checks.CheckMessage] = [
        checks.Warning(
            _('%(setting)s has an unknown key "%(key)s".')
            % {"setting": where, "key": key},
            hint=_('A backend takes "CLASS" and "CONFIG"; check the spelling.'),
            id=ID.format("W003"),
        )
        for key in sorted(set(backend) - BACKEND_KEYS)
    ]
    try:
        backend_class = import_backend_class(backend["CLASS"], kind=kind, alias=alias)
    except InvalidAIBackendError:
        messages.append(_class_error(kind, where, backend["CLASS"]))
        backend_class = None
    command = backend_class.missing_requirement() if backend_class else None
    if command:
        messages.append(
            checks.Error(
                # Translators: %(setting)s is where in the settings, such as
                # WAGTAIL_VECTOR_INDEX["EMBEDDING_BACKENDS"]["default"]["CLASS"];
                # %(path)s the dotted path found there.
                _("%(setting)s %(path)s needs a package that is not installed.")
                % {"setting": f'{where}["CLASS"]', "path": repr(backend["CLASS"])},
                # Translators: %(command)s is a shell command to copy as it is.
                hint=_("Install it with %(command)s.") % {"command": command},
                id=ID.format("E040"),
            )
        )
        # Without the package the backend cannot describe its model.
        backend_class = None
    config = backend.get("CONFIG", {})
    if not isinstance(config, Mapping):
        messages.append(
            checks.Error(
                # Translators: %(setting)s is where in the settings, such as
                # WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CONFIG"];
                # %(type)s a Python type (list, str).
                _("%(setting)s must be a dict, not %(type)s.")
                % {"setting": f'{where}["CONFIG"]', "type": type(config).__name__},
                # Translators: %(example)s is Python code to copy as it is.
                hint=_("Give the configuration as %(example)s.")
                % {"example": '{"MODEL_ID": "...", ...}'},
                id=ID.format("E006"),
            )
        )
        return messages
    messages.extend(_check_config(kind, where, config, backend_class))
    return messages


def _imports(path: Any) -> bool:
    """Whether ``path`` is a dotted path that imports (what it names aside)."""
    if not isinstance(path, str) or not path:
        return False
    try:
        import_string(path)
    except ImportError:
        return False
    return True


def _class_error(kind: str, where: str, path: Any) -> checks.CheckMessage:
    """E004 (``CLASS`` does not import) or E005 (not a backend of ``kind``).

    Told apart by importing the path again, not by the wording of the
    backend's error, which is translated.
    """
    values = {
        "setting": f'{where}["CLASS"]',
        "path": repr(path),
        "default": conf.DEFAULTS[kind]["default"]["CLASS"],
    }
    if not _imports(path):
        return checks.Error(
            # Translators: %(setting)s is where in the settings, such as
            # WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CLASS"];
            # %(path)s the dotted path found there.
            _("%(setting)s %(path)s cannot be imported.") % values,
            # Translators: %(default)s is the dotted path of a Python class.
            hint=_('Check the dotted path; for LiteLLM use "%(default)s".') % values,
            id=ID.format("E004"),
        )
    if kind == "chat":
        # Translators: %(setting)s is where in the settings, such as
        # WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CLASS"]; %(path)s
        # the dotted path found there.
        message = _("%(setting)s %(path)s is not a chat backend.") % values
        # Translators: %(default)s is the dotted path of a Python class.
        hint = _('Use a subclass of BaseChatBackend, such as "%(default)s".') % values
    else:
        # Translators: %(setting)s is where in the settings, such as
        # WAGTAIL_VECTOR_INDEX["EMBEDDING_BACKENDS"]["default"]["CLASS"];
        # %(path)s the dotted path found there.
        message = _("%(setting)s %(path)s is not an embedding backend.") % values
        hint = (
            # Translators: %(default)s is the dotted path of a Python class.
            _('Use a subclass of BaseEmbeddingBackend, such as "%(default)s".') % values
        )
    return checks.Error(message, hint=hint, id=ID.format("E005"))


def _check_config(
    kind: str, where: str, config: Mapping[str, Any], backend_class: Any
) -> list[checks.CheckMessage]:
    where = f'{where}["CONFIG"]'
    messages: list[checks.CheckMessage] = [
        checks.Warning(
            _('%(setting)s has an unknown key "%(key)s".')
            % {"setting": where, "key": key},
            hint=_("The known keys are %(keys)s; check the spelling.")
            % {"keys": ", ".join(sorted(CONFIG_KEYS))},
            id=ID.format("W003"),
        )
        for key in sorted(set(config) - CONFIG_KEYS)
    ]
    model_id = config.get("MODEL_ID")
    if model_id is None and backend_class is not None:
        model_id = backend_class.default_model_id
    if not isinstance(model_id, str) or not model_id.strip():
        # Without a usable class (E004/E005) an absent MODEL_ID may be fine:
        # the class may have a default, so only the CLASS is reported then.
        if model_id is not None or backend_class is not None:
            messages.append(
                checks.Error(
                    # Translators: %(setting)s is where in the settings, such as
                    # WAGTAIL_VECTOR_INDEX[...]["default"]["CONFIG"]["MODEL_ID"].
                    _("%(setting)s is missing or not a non-empty string.")
                    % {"setting": f'{where}["MODEL_ID"]'},
                    hint=_(
                        'Name the model as LiteLLM knows it, e.g. "gpt-4o", '
                        '"ollama/llama3" or "text-embedding-3-small".'
                    ),
                    id=ID.format("E007"),
                )
            )
        model_id = None
    parameters = config.get("DEFAULT_PARAMETERS", {})
    if not isinstance(parameters, Mapping):
        messages.append(
            checks.Error(
                _("%(setting)s must be a dict, not %(type)s.")
                % {
                    "setting": f'{where}["DEFAULT_PARAMETERS"]',
                    "type": type(parameters).__name__,
                },
                # Translators: %(example)s is Python code to copy as it is.
                hint=_("Give parameters as %(example)s.")
                % {"example": '{"temperature": 0.7, ...}'},
                id=ID.format("E008"),
            )
        )
        parameters = {}
    for key in sorted(RESERVED_PARAMETERS.intersection(parameters)):
        messages.append(
            checks.Error(
                # Translators: %(setting)s is where in the settings, such as
                # WAGTAIL_VECTOR_INDEX[...]["default"]["CONFIG"]["DEFAULT_PARAMETERS"];
                # %(key)s the name of a model parameter.
                _('%(setting)s sets "%(key)s", which the backend sets itself.')
                % {"setting": f'{where}["DEFAULT_PARAMETERS"]', "key": key},
                hint=(
                    # Translators: "model" is a parameter's name, MODEL_ID a
                    # setting's key.
                    _('Remove "model" and set the model with "MODEL_ID".')
                    if key == "model"
                    # Translators: %(key)s is the name of a model parameter.
                    else _('Remove "%(key)s".') % {"key": key}
                ),
                id=ID.format("E012"),
            )
        )
    for key, example in INTEGER_KEYS.items():
        if key in config and not _is_positive_int(config[key]):
            messages.append(
                checks.Error(
                    # Translators: %(setting)s is where in the settings, such as
                    # WAGTAIL_VECTOR_INDEX[...]["default"]["CONFIG"]["TOKEN_LIMIT"];
                    # %(value)s the value found there, as Python writes it.
                    _("%(setting)s must be a positive integer, not %(value)s.")
                    % {"setting": f'{where}["{key}"]', "value": repr(config[key])},
                    hint=_(
                        # Translators: %(key)s is a setting's key (TOKEN_LIMIT).
                        'Set "%(key)s" to a whole number such as %(example)s, or '
                        "remove it."
                    )
                    % {"key": key, "example": example},
                    id=ID.format("E009"),
                )
            )
    switches = {
        "EMBEDDING_BASE64": _(
            "True asks the provider for base64-encoded vectors, False for "
            "JSON numbers; remove the key to decide by the provider."
        ),
        "EMBEDDING_DIRECT": _(
            "True (the default) lets OpenAI-shaped embedding requests skip "
            "LiteLLM's reply objects where nothing is lost; False sends every "
            "request through LiteLLM."
        ),
        "SUPPORTS_VISION": _(
            "True says the chat model takes images (for image descriptions), "
            "False that it does not; remove the key to go by LiteLLM's model map."
        ),
    }
    retries = config.get("MAX_RETRIES", 0)
    if not conf.is_count(retries):
        messages.append(
            checks.Error(
                _("%(setting)s must be a whole number of 0 or more, not %(value)s.")
                % {"setting": f'{where}["MAX_RETRIES"]', "value": repr(retries)},
                hint=_(
                    "Set how many times a failure that may pass (rate limit, "
                    "timeout, outage) is retried, such as 2 (the default), or 0."
                ),
                id=ID.format("E024"),
            )
        )
    attempt_timeout = config.get("ATTEMPT_TIMEOUT", 1)
    if not conf.is_duration(attempt_timeout):
        messages.append(
            checks.Error(
                _("%(setting)s must be a number of seconds above 0, not %(value)s.")
                % {
                    "setting": f'{where}["ATTEMPT_TIMEOUT"]',
                    "value": repr(attempt_timeout),
                },
                hint=_(
                    "Set the longest one request may take, shorter than the "
                    '"timeout" parameter (the whole call\'s) so that a slow '
                    "request can be retried, or remove it."
                ),
                id=ID.format("E027"),
            )
        )
    for key, hint in switches.items():
        if key in config and not isinstance(config[key], bool):
            messages.append(
                checks.Error(
                    # Translators: %(setting)s is where in the settings;
                    # %(value)s the value found there, as Python writes it.
                    _("%(setting)s must be True or False, not %(value)s.")
                    % {"setting": f'{where}["{key}"]', "value": repr(config[key])},
                    hint=hint,
                    id=ID.format("E018"),
                )
            )
    if backend_class is None or model_id is None:
        return messages
    description = backend_class.describe_model(model_id)
    if "TOKEN_LIMIT" not in config and not (description and description.token_limit):
        messages.append(
            checks.Error(
                _(
                    # Translators: %(setting)s is where in the settings, such as
                    # WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["default"]["CONFIG"];
                    # %(model)s the name of an AI model.
                    '%(setting)s: LiteLLM does not know the token limit of model "%(model)s".'  # noqa: E501
                )
                % {"setting": where, "model": model_id},
                hint=_(
                    'Set "TOKEN_LIMIT" to the number of input tokens the model '
                    "accepts (see the provider's documentation)."
                ),
                id=ID.format("E010"),
            )
        )
    if (
        kind == "embedding"
        and "EMBEDDING_OUTPUT_DIMENSIONS" not in config
        and not (description and description.embedding_output_dimensions)
    ):
        messages.append(
            checks.Error(
                _(
                    # Translators: %(setting)s is where in the settings, such as
                    # WAGTAIL_VECTOR_INDEX["EMBEDDING_BACKENDS"]["default"]["CONFIG"];
                    # %(model)s the name of an AI model.
                    '%(setting)s: LiteLLM does not know the output dimensions of model "%(model)s".'  # noqa: E501
                )
                % {"setting": where, "model": model_id},
                hint=_(
                    'Set "EMBEDDING_OUTPUT_DIMENSIONS" to the length of the vectors '
                    "the model returns."
                ),
                id=ID.format("E011"),
            )
        )
    supported = description.supported_parameters if description else None
    if kind == "chat" and supported is not None:
        for key in sorted(MODEL_PARAMETERS.intersection(parameters) - supported):
            messages.append(
                checks.Warning(
                    # Translators: %(setting)s is where in the settings, such as
                    # WAGTAIL_VECTOR_INDEX[...]["CONFIG"]["DEFAULT_PARAMETERS"]["seed"];
                    # %(model)s the name of an AI model, %(key)s of a parameter.
                    _('%(setting)s: model "%(model)s" does not support "%(key)s".')
                    % {
                        "setting": f'{where}["DEFAULT_PARAMETERS"]["{key}"]',
                        "model": model_id,
                        "key": key,
                    },
                    hint=_(
                        # Translators: %(key)s is the name of a model parameter,
                        # %(supported)s a list of them.
                        'Remove "%(key)s"; the provider would reject the call. '
                        "Supported: %(supported)s."
                    )
                    % {
                        "key": key,
                        "supported": ", ".join(sorted(MODEL_PARAMETERS & supported)),
                    },
                    id=ID.format("W002"),
                )
            )
    limit = description.max_output_tokens if description else None
    if kind == "chat" and limit:
        for key in OUTPUT_TOKEN_PARAMETERS:
            value = parameters.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                if value > limit:
                    values = {
                        "setting": f'{where}["DEFAULT_PARAMETERS"]["{key}"]',
                        "key": key,
                        "value": f"{value:,}",
                        "model": model_id,
                        "limit": f"{limit:,}",
                    }
                    messages.append(
                        checks.Warning(
                            _(
                                # Translators: %(setting)s is where in the settings,
                                # such as WAGTAIL_VECTOR_INDEX[...]["CONFIG"]
                                # ["DEFAULT_PARAMETERS"]["max_tokens"];
                                # %(value)s and %(limit)s are numbers of tokens,
                                # %(model)s the name of an AI model.
                                '%(setting)s is %(value)s, more than model "%(model)s" '
                                "writes in one answer (%(limit)s tokens)."
                            )
                            % values,
                            hint=_(
                                # Translators: %(key)s is the name of a model
                                # parameter, %(limit)s a number of tokens.
                                'Lower "%(key)s" to %(limit)s or less; the provider '
                                "may reject the call."
                            )
                            % values,
                            id=ID.format("W004"),
                        )
                    )
    return messages


# -- what wagtail-vector-index 0.10.0 sites still have ------------------------
#
# 0.10.0's own settings are read here with django.conf.settings, not through
# conf: nothing but these checks reads them, and they are never obeyed.

OLD_STORAGE_SETTING = "WAGTAIL_VECTOR_INDEX_STORAGE_PROVIDERS"
OLD_PROMPT_SETTING = "WAGTAIL_VECTOR_INDEX_QUERY_PROMPT"
OLD_PGVECTOR_APP = "wagtail_vector_index.storage.pgvector"
PGVECTOR_APP = "wagtail_vector_index.contrib.pgvector"
UPGRADE_GUIDE = "docs/upgrading.md"
#: The keys of ``vector_index_options`` (``ModelVectorIndex`` attributes).
INDEX_OPTIONS = (
    "embedding_alias",
    "chat_alias",
    "max_chunk_tokens",
    "chunk_overlap",
    "prompt",
    "search_mode",
    "hybrid_weights",
    "rrf_k",
    "include_restricted",
)


def _old_storage_hint(providers: Any) -> str:
    paths = [
        str(provider.get("STORAGE_PROVIDER") or provider.get("BACKEND") or "")
        for provider in (providers.values() if isinstance(providers, Mapping) else ())
        if isinstance(provider, Mapping)
    ]
    values = {
        "app": PGVECTOR_APP,
        "setting": f'{SETTING}["{conf.STORAGE_KEY}"]',
        "storage": conf.PGVECTOR_STORAGE,
        # Never the old provider's values: its API_KEY is a credential.
        "qdrant": f'{{"CLASS": "{conf.QDRANT_STORAGE}", '
        '"CONFIG": {"URL": "...", "API_KEY": "..."}}',
        "extra": 'pip install "wagtail-vector-index[qdrant]"',
    }
    if any("pgvector" in path.lower() for path in paths):
        return (
            _(
                # Translators: %(app)s is the name of a Django app, %(setting)s
                # where in the settings (WAGTAIL_VECTOR_INDEX["STORAGE"]),
                # %(storage)s the dotted path of a Python class.
                'Remove it. For pgvector, add "%(app)s" to INSTALLED_APPS and set '
                '%(setting)s = "%(storage)s".'
            )
            % values
        )
    if paths and all("numpy" in path.lower() for path in paths):
        return _(
            "Remove it: vectors are stored in the application database and "
            "searched with NumPy by default."
        )
    if any("qdrant" in path.lower() for path in paths):
        return (
            _(
                # Translators: %(extra)s is a shell command, %(setting)s where in
                # the settings (WAGTAIL_VECTOR_INDEX["STORAGE"]), %(qdrant)s
                # Python code to copy, with "..." to fill in.
                "Remove it. For Qdrant, run %(extra)s and set %(setting)s = "
                "%(qdrant)s (the server's URL and API key; see docs/qdrant.md)."
            )
            % values
        )
    return (
        _(
            # Translators: %(app)s is the name of a Django app, %(setting)s where
            # in the settings (WAGTAIL_VECTOR_INDEX["STORAGE"]), %(storage)s the
            # dotted path of a Python class, %(qdrant)s Python code to copy,
            # with "..." to fill in.
            "Remove it. Vectors are stored in the application database by default; "
            'on PostgreSQL, add "%(app)s" to INSTALLED_APPS and set %(setting)s = '
            '"%(storage)s"; for Qdrant, set %(setting)s = %(qdrant)s. Weaviate is '
            "no longer supported."
        )
        % values
    )


@checks.register("wagtail_vector_index")
def check_0_10_settings(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Report the settings of wagtail-vector-index 0.10.0 that no longer apply."""
    from django.apps import apps
    from django.conf import settings

    messages: list[checks.CheckMessage] = []
    if hasattr(settings, OLD_STORAGE_SETTING):
        messages.append(
            checks.Warning(
                _(
                    # Translators: %(setting)s is the name of a Django setting.
                    "%(setting)s is a setting of wagtail-vector-index 0.10.0 and "
                    "is no longer read."
                )
                % {"setting": OLD_STORAGE_SETTING},
                hint=_old_storage_hint(getattr(settings, OLD_STORAGE_SETTING)),
                id=ID.format("W005"),
            )
        )
    if apps.is_installed(OLD_PGVECTOR_APP):
        messages.append(
            checks.Warning(
                _(
                    # Translators: %(app)s is the name of a Django app.
                    '"%(app)s" in INSTALLED_APPS is the pgvector app of '
                    "wagtail-vector-index 0.10.0: it stores nothing any more (its "
                    "migrations drop its old table)."
                )
                % {"app": OLD_PGVECTOR_APP},
                hint=_(
                    # Translators: %(app)s is the name of a Django app, %(setting)s
                    # where in the settings (WAGTAIL_VECTOR_INDEX["STORAGE"]),
                    # %(storage)s the dotted path of a Python class.
                    'Replace it with "%(app)s" and set %(setting)s = "%(storage)s"; '
                    "manage.py migrate drops the old table either way."
                )
                % {
                    "app": PGVECTOR_APP,
                    "setting": f'{SETTING}["{conf.STORAGE_KEY}"]',
                    "storage": conf.PGVECTOR_STORAGE,
                },
                id=ID.format("W006"),
            )
        )
    if hasattr(settings, OLD_PROMPT_SETTING):
        messages.append(
            checks.Warning(
                _(
                    "%(setting)s is a setting of wagtail-vector-index 0.10.0 and "
                    "is no longer read."
                )
                % {"setting": OLD_PROMPT_SETTING},
                hint=_(
                    # Translators: %(example)s is Python code to copy as it is;
                    # "prompt" is an attribute's name; %(placeholder)s is written in
                    # a prompt where the content goes ("{context}").
                    "Set the prompt per index: %(example)s on the model (or prompt "
                    'on a VectorIndex subclass), where "%(placeholder)s" marks the '
                    "place of the matching content."
                )
                % {
                    "example": 'vector_index_options = {"prompt": "... {context}"}',
                    "placeholder": "{context}",
                },
                id=ID.format("W007"),
            )
        )
    return messages


def _has_name(model: Any, name: str) -> bool:
    from django.core.exceptions import FieldDoesNotExist

    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return hasattr(model, name)
    return True


def _field_names(model: Any) -> list[str]:
    return [
        field.name
        for field in model._meta.get_fields()
        if not (field.auto_created and not field.concrete)
    ]


@checks.register(checks.Tags.models)
def check_indexed_models(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """The models using ``VectorIndexedMixin``: ``embedding_fields`` names that
    do not exist (their text would silently be empty) and 0.10.0 attributes."""
    import difflib

    from django.apps import apps

    from wagtail_vector_index.index.fields import EmbeddingField
    from wagtail_vector_index.index.mixins import VectorIndexedMixin

    if app_configs is None:
        models = apps.get_models()
    else:
        models = [model for config in app_configs for model in config.get_models()]
    messages: list[checks.CheckMessage] = []
    for model in models:
        if not issubclass(model, VectorIndexedMixin):
            continue
        name = model.__name__
        for field in getattr(model, "embedding_fields", None) or ():
            # A subclass with its own get_text() may not read the attribute.
            if not isinstance(field, EmbeddingField) or (
                type(field).get_text is not EmbeddingField.get_text
            ):
                continue
            if _has_name(model, field.field_name):
                continue
            close = difflib.get_close_matches(field.field_name, _field_names(model))
            if close:
                hint = _(
                    # Translators: %(name)s is the name of a model's field.
                    'Did you mean "%(name)s"? As it is, the index embeds no text '
                    "for it."
                ) % {"name": close[0]}
            else:
                hint = _("As it is, the index embeds no text for it.")
            messages.append(
                checks.Error(
                    _(
                        # Translators: %(model)s is the name of a model (a Python
                        # class), %(field)s the name in its embedding_fields.
                        '%(model)s.embedding_fields names "%(field)s", which is not '
                        "a field, property or method of %(model)s."
                    )
                    % {"model": name, "field": field.field_name},
                    hint=hint,
                    obj=model,
                    id=ID.format("E017"),
                )
            )
        if getattr(model, "vector_index_class", None) is not None:
            messages.append(
                checks.Warning(
                    _(
                        # Translators: %(model)s is the name of a model (a Python
                        # class).
                        "%(model)s.vector_index_class is an attribute of "
                        "wagtail-vector-index 0.10.0 and is ignored."
                    )
                    % {"model": name},
                    hint=_(
                        # Translators: %(options)s is a list of the keys of
                        # vector_index_options, %(guide)s the file of the upgrade
                        # guide.
                        "Remove it. Configure the model's index with "
                        "vector_index_options = {...} (%(options)s), or subclass "
                        "wagtail_vector_index.index.VectorIndex and register it "
                        "with @register_index (see %(guide)s)."
                    )
                    % {
                        "options": ", ".join(f'"{key}"' for key in INDEX_OPTIONS),
                        "guide": UPGRADE_GUIDE,
                    },
                    obj=model,
                    id=ID.format("W008"),
                )
            )
        alias = getattr(model, "embedding_backend_alias", None)
        if alias is not None:
            options = getattr(model, "vector_index_options", None) or {}
            used = options.get("embedding_alias", "default")
            messages.append(
                checks.Warning(
                    _(
                        # Translators: %(model)s is the name of a model (a Python
                        # class), %(alias)s the alias of an embedding backend.
                        "%(model)s.embedding_backend_alias is an attribute of "
                        "wagtail-vector-index 0.10.0 and is ignored: the index "
                        'uses the "%(alias)s" embedding backend.'
                    )
                    % {"model": name, "alias": used},
                    hint=_(
                        # Translators: %(model)s is the name of a model (a Python
                        # class), %(alias)s the alias of an embedding backend.
                        'Remove it and add "embedding_alias": "%(alias)s" to '
                        "%(model)s.vector_index_options."
                    )
                    % {"model": name, "alias": alias},
                    obj=model,
                    id=ID.format("W009"),
                )
            )
    return messages


@checks.register(checks.Tags.models)
def check_index_search(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Each vector index's search settings: E029 (``search_mode``,
    ``hybrid_weights`` or ``rrf_k`` unusable), W012 (keyword or hybrid by
    default over models that Wagtail's search cannot search)."""
    from wagtail_vector_index.index import hybrid
    from wagtail_vector_index.index.registry import get_indexes

    messages: list[checks.CheckMessage] = []
    for name, index in get_indexes().items():
        mode = getattr(index, "search_mode", hybrid.VECTOR)
        problems = []
        if mode not in hybrid.MODES:
            problems.append(
                _('search_mode is %(value)s, not "vector", "keyword" or "hybrid".')
                % {"value": repr(mode)}
            )
        weights = getattr(index, "hybrid_weights", (1.0, 1.0))
        if not (
            isinstance(weights, (tuple, list))
            and len(weights) == 2
            and all(_is_weight(weight) for weight in weights)
            and any(weights)
        ):
            problems.append(
                _(
                    "hybrid_weights is %(value)s, not two numbers of 0 or more "
                    "(the vector ranking's, the keyword ranking's)."
                )
                % {"value": repr(weights)}
            )
        k = getattr(index, "rrf_k", 60)
        if not conf.is_duration(k):
            problems.append(
                _("rrf_k is %(value)s, not a number above 0.") % {"value": repr(k)}
            )
        for problem in problems:
            messages.append(
                checks.Error(
                    # Translators: %(index)s is the name of a vector index,
                    # %(problem)s a sentence saying what is wrong.
                    _('Vector index "%(index)s": %(problem)s')
                    % {"index": name, "problem": problem},
                    hint=_(
                        "Fix it in the model's vector_index_options or on the "
                        "VectorIndex subclass (see docs/retrieval.md)."
                    ),
                    id=ID.format("E029"),
                )
            )
        if mode in (hybrid.KEYWORD, hybrid.HYBRID):
            blind = [
                queryset.model._meta.label
                for queryset in index.get_querysets()
                if not hybrid.keyword_searchable(queryset.model)
            ]
            if blind:
                messages.append(
                    checks.Warning(
                        _(
                            # Translators: %(index)s is the name of a vector
                            # index, %(mode)s "keyword" or "hybrid", %(models)s
                            # a list of models.
                            'Vector index "%(index)s" searches in %(mode)s mode, '
                            "but %(models)s has no search_fields: its objects "
                            "are ranked by vector alone."
                        )
                        % {"index": name, "mode": mode, "models": ", ".join(blind)},
                        hint=_(
                            "Add Wagtail search_fields to the model "
                            "(wagtail.search.index.SearchField), or use "
                            'search_mode "vector".'
                        ),
                        id=ID.format("W012"),
                    )
                )
    return messages


def _is_weight(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    )


#: Apps the admin pages need besides Wagtail's defaults: the AI settings are
#: a ``BaseSiteSetting``, and every admin page links to them through the
#: ``wagtailsettings`` URL namespace.
REQUIRED_APPS = ("wagtail.contrib.settings",)


@checks.register("wagtail_vector_index")
def check_required_apps(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Report apps the package needs that are not in INSTALLED_APPS: without
    them every admin page fails (a 500, "'wagtailsettings' is not a
    registered namespace")."""
    from django.apps import apps

    return [
        checks.Error(
            _(
                # Translators: %(app)s is the name of a Django app.
                '"%(app)s" is not in INSTALLED_APPS: wagtail_vector_index needs '
                "it, and without it every Wagtail admin page fails."
            )
            % {"app": app},
            hint=_(
                # Translators: %(app)s is the name of a Django app.
                'Add "%(app)s" to INSTALLED_APPS, as the README\'s "Install in '
                'your project" shows.'
            )
            % {"app": app},
            id=ID.format("E033"),
        )
        for app in REQUIRED_APPS
        if not apps.is_installed(app)
    ]


def _panels_with_ai_fields() -> Iterable[tuple[Any, Any, Any]]:
    """``(model, panel, inline)`` for every ``AIFieldPanel`` in the edit
    handlers of the project's page models and of the models that declare
    panels; ``inline`` is the ``InlinePanel`` the panel sits in, else ``None``."""
    from django.apps import apps
    from wagtail.admin.panels import InlinePanel, get_edit_handler
    from wagtail.models import Page

    from wagtail_vector_index.panels import AIFieldPanelMixin

    for model in apps.get_models():
        if issubclass(model, Page):
            edit_handler = model.get_edit_handler()
        elif hasattr(model, "panels") or hasattr(model, "edit_handler"):
            edit_handler = get_edit_handler(model)
        else:
            continue
        stack = [(edit_handler, None)]
        while stack:
            panel, inline = stack.pop()
            if isinstance(panel, AIFieldPanelMixin):
                yield model, panel, inline
            if isinstance(panel, InlinePanel):
                stack.append((panel.child_edit_handler, panel))
            stack.extend((child, inline) for child in getattr(panel, "children", []))


def _ai_field_panels() -> Iterable[tuple[Any, Any]]:
    """``(model, panel)`` for every ``AIFieldPanel`` on a model's own field
    (not in an ``InlinePanel``)."""
    for model, panel, inline in _panels_with_ai_fields():
        if inline is None:
            yield model, panel


@checks.register("wagtail_vector_index")
def check_ai_field_panels(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``AIFieldPanel`` on a field it cannot fill (W020), or among an
    ``InlinePanel``'s child panels, where the editor shows no button (W022)."""
    from django.db import models
    from wagtail.fields import RichTextField

    messages: list[checks.CheckMessage] = []
    for model, panel, inline in _panels_with_ai_fields():
        if inline is not None:
            messages.append(
                checks.Warning(
                    _(
                        "AIFieldPanel on %(field)s, inside the InlinePanel "
                        "'%(relation)s' of %(model)s: suggestions work on a "
                        "model's own fields only, so the editor shows no button "
                        "there."
                    )
                    % {
                        "field": panel.field_name,
                        "relation": inline.relation_name,
                        "model": model._meta.label,
                    },
                    hint=_("Use a FieldPanel inside the InlinePanel."),
                    obj=model,
                    id=ID.format("W022"),
                )
            )
            continue
        where = f"{model._meta.label}.{panel.field_name}"
        try:
            field = model._meta.get_field(panel.field_name)
        except Exception:  # noqa: BLE001 - a form-only field: nothing to say.
            field = None
        if field is not None and (
            not isinstance(field, models.CharField | models.TextField)
            or isinstance(field, RichTextField)
        ):
            messages.append(
                checks.Warning(
                    _(
                        "AIFieldPanel on %(field)s: it suggests plain text for a "
                        "CharField or TextField; %(type)s is neither."
                    )
                    % {"field": where, "type": type(field).__name__},
                    hint=_("Use a FieldPanel for this field."),
                    obj=model,
                    id=ID.format("W020"),
                )
            )
    return messages


@checks.register("wagtail_vector_index", checks.Tags.database)
def check_ai_field_panel_prompts(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """``AIFieldPanel`` naming a prompt that is neither built in nor defined
    by any site (W021). Tagged ``database``: it reads the sites' prompts, so
    it runs only when the checks may read the database (``manage.py check
    --database default``, ``migrate``), as Django asks of such checks."""
    from django.db import DatabaseError

    from wagtail_vector_index import editor_prompts

    if not databases:
        return []
    try:
        site_prompts = {
            str(name)
            for stored in editor_prompts.stored_prompt_sets()
            for name in stored
        }
    except DatabaseError:  # Not migrated yet.
        return []
    messages: list[checks.CheckMessage] = []
    for model, panel in _ai_field_panels():
        if (
            panel.prompt not in editor_prompts.BUILTIN_PROMPTS
            and panel.prompt not in site_prompts
        ):
            where = f"{model._meta.label}.{panel.field_name}"
            messages.append(
                checks.Warning(
                    _(
                        'AIFieldPanel on %(field)s asks for the prompt "%(prompt)s", '
                        "which is not built in and no site defines: its Suggest "
                        "button answers with an error."
                    )
                    % {"field": where, "prompt": panel.prompt},
                    hint=_(
                        "Add the prompt in Settings › AI settings, or use a "
                        'built-in prompt ("title", "search_description").'
                    ),
                    obj=model,
                    id=ID.format("W021"),
                )
            )
    return messages
