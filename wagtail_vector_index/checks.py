"""System checks for the ``WAGTAIL_VECTOR_INDEX`` setting.

Every mistake gets a stable id, a message naming the alias and key, and a hint
with the fix. The ids are part of the public API: projects silence them with
``SILENCED_SYSTEM_CHECKS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core import checks
from django.utils.module_loading import import_string

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
                f"{SETTING} must be a dict, not {type(user).__name__}.",
                hint=f'Set {SETTING} = {{"CHAT_BACKENDS": {{...}}, '
                '"EMBEDDING_BACKENDS": {...}}, or remove it to use the defaults.',
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
    }
    for key in sorted(set(user) - known):
        messages.append(
            checks.Warning(
                f'{SETTING} has an unknown key "{key}".',
                hint="The known keys are "
                + ", ".join(f'"{k}"' for k in sorted(known))
                + "; check the spelling.",
                id=ID.format("W003"),
            )
        )
    limit = user.get(conf.TEST_PAGES_RATE_LIMIT_KEY, 0)
    if not conf.is_count(limit):
        messages.append(
            checks.Error(
                f'{SETTING}["{conf.TEST_PAGES_RATE_LIMIT_KEY}"] must be a whole number '
                f"of calls per user per minute, not {limit!r}.",
                hint=f"Use a number such as {conf.DEFAULT_TEST_PAGES_RATE_LIMIT}, "
                "or 0 for no limit.",
                id=ID.format("E013"),
            )
        )
    timeout = user.get(conf.SITE_SETTINGS_CACHE_TIMEOUT_KEY, 0)
    if not conf.is_count(timeout):
        messages.append(
            checks.Error(
                f'{SETTING}["{conf.SITE_SETTINGS_CACHE_TIMEOUT_KEY}"] must be a whole '
                f"number of seconds, not {timeout!r}.",
                hint="Use a number such as "
                f"{conf.DEFAULT_SITE_SETTINGS_CACHE_TIMEOUT} (the default), or 0 to "
                "read the site's AI settings from the database on every request.",
                id=ID.format("E016"),
            )
        )
    auto_update = user.get(conf.AUTO_UPDATE_KEY, False)
    if not isinstance(auto_update, bool):
        messages.append(
            checks.Error(
                f'{SETTING}["{conf.AUTO_UPDATE_KEY}"] must be True or False, '
                f"not {auto_update!r}.",
                hint="Set it to True to update vector indexes when content is "
                "published, unpublished or deleted.",
                id=ID.format("E014"),
            )
        )
    if conf.STORAGE_KEY in user:
        messages.extend(_check_storage(user[conf.STORAGE_KEY]))
    for kind, kind_key in conf.KIND_KEYS.items():
        messages.extend(_check_kind(kind, kind_key, conf.get_backend_settings(kind)))
    return messages


def _check_storage(path: Any) -> list[checks.CheckMessage]:
    where = f'{SETTING}["{conf.STORAGE_KEY}"]'
    hint = (
        f'Use "{conf.DATABASE_STORAGE}" (the default) or "{conf.PGVECTOR_STORAGE}" '
        "(PostgreSQL with the pgvector extension)."
    )
    if not isinstance(path, str) or not path:
        return [
            checks.Error(
                f"{where} must be a dotted path.", hint=hint, id=ID.format("E015")
            )
        ]
    try:
        import_string(path)
    except ImportError as error:
        return [
            checks.Error(
                f"{where} {path!r} cannot be imported ({error}).",
                hint=hint,
                id=ID.format("E015"),
            )
        ]
    return []


def _check_kind(kind: str, kind_key: str, backends: Any) -> list[checks.CheckMessage]:
    if not isinstance(backends, Mapping):
        return [
            checks.Error(
                f'{SETTING}["{kind_key}"] must be a dict of backends by alias, '
                f"not {type(backends).__name__}.",
                hint=f'Use {{"default": {{"CLASS": "...", "CONFIG": '
                f'{{"MODEL_ID": "..."}}}}}} or remove "{kind_key}" to use the default.',
                id=ID.format("E002"),
            )
        ]
    messages: list[checks.CheckMessage] = []
    if "default" not in backends:
        configured = ", ".join(sorted(map(str, backends))) or "none"
        messages.append(
            checks.Warning(
                f'{SETTING}["{kind_key}"] has no "default" alias.',
                hint=f'Calls that name no alias use "default"; add one or always '
                f"pass an alias (configured: {configured}).",
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
                f'{where} must be a dict with a "CLASS" key.',
                hint='Give the backend as {"CLASS": "dotted.path.To.Backend", '
                '"CONFIG": {"MODEL_ID": "..."}}.',
                id=ID.format("E003"),
            )
        ]
    messages: list[checks.CheckMessage] = [
        checks.Warning(
            f'{where} has an unknown key "{key}".',
            hint='A backend takes "CLASS" and "CONFIG"; check the spelling.',
            id=ID.format("W003"),
        )
        for key in sorted(set(backend) - BACKEND_KEYS)
    ]
    try:
        backend_class = import_backend_class(backend["CLASS"], kind=kind, alias=alias)
    except InvalidAIBackendError as error:
        wrong_kind = "is not a subclass" in str(error)
        base = "BaseChatBackend" if kind == "chat" else "BaseEmbeddingBackend"
        messages.append(
            checks.Error(
                f'{where}["CLASS"] {backend["CLASS"]!r} '
                + (
                    f"is not {'an' if kind == 'embedding' else 'a'} {kind} backend."
                    if wrong_kind
                    else "cannot be imported."
                ),
                hint=(
                    f"Use a subclass of {base}, such as "
                    f'"{conf.DEFAULTS[kind]["default"]["CLASS"]}".'
                    if wrong_kind
                    else "Check the dotted path; for LiteLLM use "
                    f'"{conf.DEFAULTS[kind]["default"]["CLASS"]}".'
                ),
                id=ID.format("E005" if wrong_kind else "E004"),
            )
        )
        backend_class = None
    config = backend.get("CONFIG", {})
    if not isinstance(config, Mapping):
        messages.append(
            checks.Error(
                f'{where}["CONFIG"] must be a dict, not {type(config).__name__}.',
                hint='Give the configuration as {"MODEL_ID": "...", ...}.',
                id=ID.format("E006"),
            )
        )
        return messages
    messages.extend(_check_config(kind, where, config, backend_class))
    return messages


def _check_config(
    kind: str, where: str, config: Mapping[str, Any], backend_class: Any
) -> list[checks.CheckMessage]:
    where = f'{where}["CONFIG"]'
    messages: list[checks.CheckMessage] = [
        checks.Warning(
            f'{where} has an unknown key "{key}".',
            hint=f"The known keys are {', '.join(sorted(CONFIG_KEYS))}; "
            "check the spelling.",
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
                    f'{where}["MODEL_ID"] is missing or not a non-empty string.',
                    hint='Name the model as LiteLLM knows it, e.g. "gpt-4o", '
                    '"ollama/llama3" or "text-embedding-3-small".',
                    id=ID.format("E007"),
                )
            )
        model_id = None
    parameters = config.get("DEFAULT_PARAMETERS", {})
    if not isinstance(parameters, Mapping):
        messages.append(
            checks.Error(
                f'{where}["DEFAULT_PARAMETERS"] must be a dict, '
                f"not {type(parameters).__name__}.",
                hint='Give parameters as {"temperature": 0.7, ...}.',
                id=ID.format("E008"),
            )
        )
        parameters = {}
    for key in sorted(RESERVED_PARAMETERS.intersection(parameters)):
        messages.append(
            checks.Error(
                f'{where}["DEFAULT_PARAMETERS"] sets "{key}", which the backend '
                "sets itself.",
                hint=f'Remove "{key}"'
                + (' and set the model with "MODEL_ID".' if key == "model" else "."),
                id=ID.format("E012"),
            )
        )
    for key, example in INTEGER_KEYS.items():
        if key in config and not _is_positive_int(config[key]):
            messages.append(
                checks.Error(
                    f'{where}["{key}"] must be a positive integer, '
                    f"not {config[key]!r}.",
                    hint=f'Set "{key}" to a whole number such as {example}, '
                    "or remove it.",
                    id=ID.format("E009"),
                )
            )
    if backend_class is None or model_id is None:
        return messages
    description = backend_class.describe_model(model_id)
    if "TOKEN_LIMIT" not in config and not (description and description.token_limit):
        messages.append(
            checks.Error(
                f"{where}: LiteLLM does not know the token limit of model "
                f'"{model_id}".',
                hint='Set "TOKEN_LIMIT" to the number of input tokens the model '
                "accepts (see the provider's documentation).",
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
                f"{where}: LiteLLM does not know the output dimensions of model "
                f'"{model_id}".',
                hint='Set "EMBEDDING_OUTPUT_DIMENSIONS" to the length of the vectors '
                "the model returns.",
                id=ID.format("E011"),
            )
        )
    supported = description.supported_parameters if description else None
    if kind == "chat" and supported is not None:
        for key in sorted(MODEL_PARAMETERS.intersection(parameters) - supported):
            messages.append(
                checks.Warning(
                    f'{where}["DEFAULT_PARAMETERS"]["{key}"]: model "{model_id}" does '
                    f'not support "{key}".',
                    hint=f'Remove "{key}"; the provider would reject the call. '
                    f"Supported: {', '.join(sorted(MODEL_PARAMETERS & supported))}.",
                    id=ID.format("W002"),
                )
            )
    limit = description.max_output_tokens if description else None
    if kind == "chat" and limit:
        for key in OUTPUT_TOKEN_PARAMETERS:
            value = parameters.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                if value > limit:
                    messages.append(
                        checks.Warning(
                            f'{where}["DEFAULT_PARAMETERS"]["{key}"] is {value:,}, '
                            f'more than model "{model_id}" writes in one answer '
                            f"({limit:,} tokens).",
                            hint=f'Lower "{key}" to {limit:,} or less; the provider '
                            "may reject the call.",
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
)


def _old_storage_hint(providers: Any) -> str:
    paths = [
        str(provider.get("STORAGE_PROVIDER") or provider.get("BACKEND") or "")
        for provider in (providers.values() if isinstance(providers, Mapping) else ())
        if isinstance(provider, Mapping)
    ]
    if any("pgvector" in path.lower() for path in paths):
        return (
            f'Remove it. For pgvector, add "{PGVECTOR_APP}" to INSTALLED_APPS and '
            f'set {SETTING}["{conf.STORAGE_KEY}"] = "{conf.PGVECTOR_STORAGE}".'
        )
    if paths and all("numpy" in path.lower() for path in paths):
        return (
            "Remove it: vectors are stored in the application database and "
            "searched with NumPy by default."
        )
    return (
        "Remove it. Vectors are stored in the application database by default; "
        f'on PostgreSQL, add "{PGVECTOR_APP}" to INSTALLED_APPS and set '
        f'{SETTING}["{conf.STORAGE_KEY}"] = "{conf.PGVECTOR_STORAGE}". Qdrant '
        "and Weaviate are no longer supported."
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
                f"{OLD_STORAGE_SETTING} is a setting of wagtail-vector-index 0.10.0 "
                "and is no longer read.",
                hint=_old_storage_hint(getattr(settings, OLD_STORAGE_SETTING)),
                id=ID.format("W005"),
            )
        )
    if apps.is_installed(OLD_PGVECTOR_APP):
        messages.append(
            checks.Warning(
                f'"{OLD_PGVECTOR_APP}" in INSTALLED_APPS is the pgvector app of '
                "wagtail-vector-index 0.10.0: it stores nothing any more (its "
                "migrations drop its old table).",
                hint=f'Replace it with "{PGVECTOR_APP}" and set '
                f'{SETTING}["{conf.STORAGE_KEY}"] = "{conf.PGVECTOR_STORAGE}"; '
                "manage.py migrate drops the old table either way.",
                id=ID.format("W006"),
            )
        )
    if hasattr(settings, OLD_PROMPT_SETTING):
        messages.append(
            checks.Warning(
                f"{OLD_PROMPT_SETTING} is a setting of wagtail-vector-index 0.10.0 "
                "and is no longer read.",
                hint='Set the prompt per index: vector_index_options = {"prompt": '
                '"... {context}"} on the model (or prompt on a VectorIndex '
                'subclass), where "{context}" marks the place of the matching '
                "content.",
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
            messages.append(
                checks.Error(
                    f'{name}.embedding_fields names "{field.field_name}", which is '
                    f"not a field, property or method of {name}.",
                    hint=(f'Did you mean "{close[0]}"? ' if close else "")
                    + "As it is, the index embeds no text for it.",
                    obj=model,
                    id=ID.format("E017"),
                )
            )
        if getattr(model, "vector_index_class", None) is not None:
            messages.append(
                checks.Warning(
                    f"{name}.vector_index_class is an attribute of "
                    "wagtail-vector-index 0.10.0 and is ignored.",
                    hint="Remove it. Configure the model's index with "
                    "vector_index_options = {...} ("
                    + ", ".join(f'"{key}"' for key in INDEX_OPTIONS)
                    + "), or subclass wagtail_vector_index.index.VectorIndex and "
                    f"register it with @register_index (see {UPGRADE_GUIDE}).",
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
                    f"{name}.embedding_backend_alias is an attribute of "
                    "wagtail-vector-index 0.10.0 and is ignored: the index uses "
                    f'the "{used}" embedding backend.',
                    hint=f'Remove it and add "embedding_alias": "{alias}" to '
                    f"{name}.vector_index_options.",
                    obj=model,
                    id=ID.format("W009"),
                )
            )
    return messages
