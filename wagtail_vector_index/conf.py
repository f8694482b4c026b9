"""The one place that reads the ``WAGTAIL_VECTOR_INDEX`` Django setting.

Everything else asks :func:`get_backend_settings` for the backends of a kind.
The result is cached and the cache is cleared whenever Django's
``setting_changed`` signal reports a change to the setting (as
``override_settings`` does in tests). Validation lives in :mod:`checks`, which
reports mistakes through Django's system check framework; this module only
fills in defaults and never raises for a malformed value, so that ``manage.py
check`` can still run and explain what is wrong.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Literal, NotRequired, TypedDict

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "WAGTAIL_VECTOR_INDEX"

CHAT = "chat"
EMBEDDING = "embedding"
BackendKind = Literal["chat", "embedding"]

#: The key of each kind inside ``WAGTAIL_VECTOR_INDEX``.
KIND_KEYS: dict[str, str] = {CHAT: "CHAT_BACKENDS", EMBEDDING: "EMBEDDING_BACKENDS"}

LITELLM_CHAT_BACKEND = (
    "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMChatBackend"
)
LITELLM_EMBEDDING_BACKEND = (
    "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMEmbeddingBackend"
)
ECHO_CHAT_BACKEND = "wagtail_vector_index.ai_utils.backends.offline.EchoChatBackend"
HASHING_EMBEDDING_BACKEND = (
    "wagtail_vector_index.ai_utils.backends.offline.HashingEmbeddingBackend"
)


class BackendConfigSettings(TypedDict):
    """The ``CONFIG`` mapping of one backend."""

    MODEL_ID: str
    DEFAULT_PARAMETERS: NotRequired[Mapping[str, Any]]
    TOKEN_LIMIT: NotRequired[int]
    EMBEDDING_OUTPUT_DIMENSIONS: NotRequired[int]
    BATCH_SIZE: NotRequired[int]
    BATCH_TOKEN_LIMIT: NotRequired[int]
    MAX_CONCURRENCY: NotRequired[int]
    #: Ask for base64 float32 vectors: True / False; absent: by provider.
    EMBEDDING_BASE64: NotRequired[bool]
    #: OpenAI-shaped embedding requests without LiteLLM's reply objects
    #: where nothing is lost (default True).
    EMBEDDING_DIRECT: NotRequired[bool]
    #: Retries of a retryable failure (default 2; 0: none).
    MAX_RETRIES: NotRequired[int]
    #: Aliases of the same kind tried in order when this one fails.
    FALLBACKS: NotRequired[list[str]]
    #: The longest one request may take (seconds; the ``timeout`` parameter
    #: bounds the whole call).
    ATTEMPT_TIMEOUT: NotRequired[float]
    #: Whether the chat model takes images (for models LiteLLM's map does
    #: not know, or to say no to one it does).
    SUPPORTS_VISION: NotRequired[bool]


class BackendSettings(TypedDict):
    """One entry of ``CHAT_BACKENDS`` or ``EMBEDDING_BACKENDS``."""

    CLASS: str
    CONFIG: BackendConfigSettings


class UsageSettings(TypedDict, total=False):
    """``WAGTAIL_VECTOR_INDEX["USAGE"]``: the usage ledger and budgets."""

    ENABLED: bool
    RETENTION_DAYS: int
    STORE_PROMPTS: bool
    PROMPT_RETENTION_DAYS: int
    MONTHLY_BUDGET_USD: float | None
    MONTHLY_BUDGET_TOKENS: int | None
    NO_SITE_MONTHLY_BUDGET_USD: float | None
    NO_SITE_MONTHLY_BUDGET_TOKENS: int | None
    USER_DAILY_BUDGET_USD: float | None
    USER_DAILY_BUDGET_TOKENS: int | None
    ALERT_THRESHOLD: float


class CircuitBreakerSettings(TypedDict, total=False):
    """``WAGTAIL_VECTOR_INDEX["CIRCUIT_BREAKER"]``: per alias and process."""

    FAILURE_THRESHOLD: int
    COOLDOWN_SECONDS: float


class EmbeddingCacheSettings(TypedDict, total=False):
    """``WAGTAIL_VECTOR_INDEX["EMBEDDING_CACHE"]``: the embedding cache."""

    ENABLED: bool
    MAX_ENTRIES: int


class StorageSettings(TypedDict, total=False):
    """``WAGTAIL_VECTOR_INDEX["STORAGE"]`` in the backends' form."""

    CLASS: str
    CONFIG: dict[str, Any]


class ImageDescriptionSettings(TypedDict, total=False):
    """``WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"]``: describing images."""

    #: The chat alias that describes images (it must take images).
    ALIAS: str
    #: The prompt, with placeholders ``{title}``, ``{language}`` and
    #: ``{max_length}``; absent: the built-in, translated prompt.
    PROMPT: str


class WagtailVectorIndexSettings(TypedDict, total=False):
    """The shape of the ``WAGTAIL_VECTOR_INDEX`` setting."""

    CHAT_BACKENDS: dict[str, BackendSettings]
    EMBEDDING_BACKENDS: dict[str, BackendSettings]
    TEST_PAGES_RATE_LIMIT: int
    SITE_SETTINGS_CACHE_TIMEOUT: int
    AUTO_UPDATE: bool
    STORAGE: str | StorageSettings
    USAGE: UsageSettings
    CIRCUIT_BREAKER: CircuitBreakerSettings
    EMBEDDING_CACHE: EmbeddingCacheSettings
    IMAGE_DESCRIPTION: ImageDescriptionSettings


#: Provider calls per user per minute from the admin test pages; 0 disables
#: the limit.
TEST_PAGES_RATE_LIMIT_KEY = "TEST_PAGES_RATE_LIMIT"
DEFAULT_TEST_PAGES_RATE_LIMIT = 20


#: Used for a kind whose key is missing (or when the whole setting is absent).
#: These are real, importable classes and models LiteLLM knows, so that
#: ``OPENAI_API_KEY`` in the environment is all a new user needs.
DEFAULTS: dict[str, dict[str, BackendSettings]] = {
    CHAT: {
        "default": {
            "CLASS": LITELLM_CHAT_BACKEND,
            "CONFIG": {"MODEL_ID": "gpt-3.5-turbo"},
        }
    },
    EMBEDDING: {
        "default": {
            "CLASS": LITELLM_EMBEDDING_BACKEND,
            "CONFIG": {"MODEL_ID": "text-embedding-ada-002"},
        }
    },
}


def get_user_settings() -> Any:
    """The raw setting as the project wrote it (``{}`` when it is absent)."""
    return getattr(settings, SETTING_NAME, {})


@functools.cache
def get_backend_settings(kind: BackendKind) -> dict[str, Any]:
    """The configured backends of ``kind`` by alias, defaults filled in.

    Values are returned as written (possibly malformed: the system checks
    report those); callers must not mutate the result.
    """
    user = get_user_settings()
    if isinstance(user, Mapping) and KIND_KEYS[kind] in user:
        backends = user[KIND_KEYS[kind]]
        return dict(backends) if isinstance(backends, Mapping) else backends
    return DEFAULTS[kind]


def is_count(value: Any) -> bool:
    """Whether ``value`` is a whole number of zero or more (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _get_count(key: str, default: int) -> int:
    """A whole-number setting, or ``default`` when it is missing or malformed
    (the checks report the mistake)."""
    user = get_user_settings()
    value = user.get(key, default) if isinstance(user, Mapping) else default
    return value if is_count(value) else default


def get_test_pages_rate_limit() -> int:
    """Calls per user per minute allowed from the admin test pages (0: no limit)."""
    return _get_count(TEST_PAGES_RATE_LIMIT_KEY, DEFAULT_TEST_PAGES_RATE_LIMIT)


#: Seconds a site's AI settings are kept in Django's cache (0: read from the
#: database on every request). Saving the setting clears the cache entry, so
#: with a shared cache every process sees a change at once; with a
#: per-process cache (``LocMemCache``) other processes may use the old values
#: for up to this long.
SITE_SETTINGS_CACHE_TIMEOUT_KEY = "SITE_SETTINGS_CACHE_TIMEOUT"
DEFAULT_SITE_SETTINGS_CACHE_TIMEOUT = 60


def get_site_settings_cache_timeout() -> int:
    """Seconds a site's AI settings stay cached (0: not cached across requests)."""
    return _get_count(
        SITE_SETTINGS_CACHE_TIMEOUT_KEY, DEFAULT_SITE_SETTINGS_CACHE_TIMEOUT
    )


AUTO_UPDATE_KEY = "AUTO_UPDATE"


def get_auto_update() -> bool:
    """Whether publishing, unpublishing and deleting update the indexes."""
    user = get_user_settings()
    return bool(isinstance(user, Mapping) and user.get(AUTO_UPDATE_KEY) is True)


STORAGE_KEY = "STORAGE"
DATABASE_STORAGE = "wagtail_vector_index.index.storage.DatabaseStorage"
PGVECTOR_STORAGE = "wagtail_vector_index.index.storage.pgvector.PgvectorStorage"
QDRANT_STORAGE = "wagtail_vector_index.index.storage.qdrant.QdrantStorage"


def get_storage_setting() -> tuple[str | None, dict[str, Any] | None]:
    """The vector storage's dotted path (``None``: the default) and its
    ``CONFIG`` (``None`` when ``STORAGE`` is a plain dotted path).

    ``STORAGE`` is a dotted path, or the backends' form
    ``{"CLASS": "<dotted path>", "CONFIG": {...}}``.
    """
    user = get_user_settings()
    value = user.get(STORAGE_KEY) if isinstance(user, Mapping) else None
    if isinstance(value, Mapping):
        path = value.get("CLASS")
        config = value.get("CONFIG")
        return (
            path if isinstance(path, str) and path else None,
            dict(config) if isinstance(config, Mapping) else {},
        )
    return (value if isinstance(value, str) and value else None), None


def get_storage_class_path() -> str | None:
    """The dotted path of the vector storage class (``None``: the default)."""
    return get_storage_setting()[0]


USAGE_KEY = "USAGE"

#: ``WAGTAIL_VECTOR_INDEX["USAGE"]`` keys and their defaults. Budgets of
#: ``None`` mean no limit; a site's own budget (Settings › AI settings)
#: replaces the ``MONTHLY_*`` defaults for that site.
USAGE_DEFAULTS: UsageSettings = {
    "ENABLED": True,
    "RETENTION_DAYS": 365,
    "STORE_PROMPTS": False,
    "PROMPT_RETENTION_DAYS": 30,
    "MONTHLY_BUDGET_USD": None,
    "MONTHLY_BUDGET_TOKENS": None,
    "NO_SITE_MONTHLY_BUDGET_USD": None,
    "NO_SITE_MONTHLY_BUDGET_TOKENS": None,
    "USER_DAILY_BUDGET_USD": None,
    "USER_DAILY_BUDGET_TOKENS": None,
    "ALERT_THRESHOLD": 0.8,
}


def _merged_settings(
    key: str,
    defaults: Mapping[str, Any],
    valid: Mapping[str, Callable[[Any], bool]] | None = None,
) -> dict[str, Any]:
    """``WAGTAIL_VECTOR_INDEX[key]`` (a dict) over ``defaults``: every value
    as written, or with ``valid`` only the keys it names whose value passes
    their test. A malformed setting (which the checks report) leaves the
    defaults."""
    user = get_user_settings()
    given = user.get(key) if isinstance(user, Mapping) else None
    merged: dict[str, Any] = dict(defaults)
    if isinstance(given, Mapping):
        if valid is None:
            merged.update(given)
        else:
            for name, test in valid.items():
                value = given.get(name)
                if test(value):
                    merged[name] = value
    return merged


@functools.cache
def get_usage_settings() -> UsageSettings:
    """``WAGTAIL_VECTOR_INDEX["USAGE"]`` with defaults filled in (values as
    written; the checks report malformed ones)."""
    return _merged_settings(USAGE_KEY, USAGE_DEFAULTS)  # type: ignore[return-value]


CIRCUIT_BREAKER_KEY = "CIRCUIT_BREAKER"

#: Retryable failures in a row that open an alias's circuit (0: never), and
#: the seconds it stays open before one call tries the alias again.
CIRCUIT_BREAKER_DEFAULTS: CircuitBreakerSettings = {
    "FAILURE_THRESHOLD": 5,
    "COOLDOWN_SECONDS": 30,
}


EMBEDDING_CACHE_KEY = "EMBEDDING_CACHE"

#: ``WAGTAIL_VECTOR_INDEX["EMBEDDING_CACHE"]`` keys and their defaults. An
#: entry of 1,536 dimensions takes about 6 KB in the database, so the default
#: bound is about 600 MB at that size.
EMBEDDING_CACHE_DEFAULTS: EmbeddingCacheSettings = {
    "ENABLED": True,
    "MAX_ENTRIES": 100_000,
}


@functools.cache
def get_circuit_breaker_settings() -> CircuitBreakerSettings:
    """``WAGTAIL_VECTOR_INDEX["CIRCUIT_BREAKER"]`` with defaults filled in;
    a malformed value (which the checks report) falls back to its default."""
    return _merged_settings(  # type: ignore[return-value]
        CIRCUIT_BREAKER_KEY,
        CIRCUIT_BREAKER_DEFAULTS,
        {"FAILURE_THRESHOLD": is_count, "COOLDOWN_SECONDS": is_duration},
    )


def is_duration(value: Any) -> bool:
    """Whether ``value`` is a number of seconds above zero (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


#: ``CONFIG["MAX_RETRIES"]`` when it is not set.
DEFAULT_MAX_RETRIES = 2


@functools.cache
def get_embedding_cache_settings() -> EmbeddingCacheSettings:
    """``WAGTAIL_VECTOR_INDEX["EMBEDDING_CACHE"]`` with defaults filled in
    (values as written; the checks report malformed ones)."""
    return _merged_settings(  # type: ignore[return-value]
        EMBEDDING_CACHE_KEY, EMBEDDING_CACHE_DEFAULTS
    )


def get_embedding_cache_enabled() -> bool:
    """Whether vectors are kept in and taken from the embedding cache (a
    malformed value counts as the default, on)."""
    value = get_embedding_cache_settings().get("ENABLED")
    return value if isinstance(value, bool) else True


def get_embedding_cache_max_entries() -> int:
    """The most entries the embedding cache keeps (a malformed value counts
    as the default)."""
    value = get_embedding_cache_settings().get("MAX_ENTRIES")
    if is_count(value) and value > 0:
        return value
    return EMBEDDING_CACHE_DEFAULTS["MAX_ENTRIES"]


IMAGE_DESCRIPTION_KEY = "IMAGE_DESCRIPTION"

#: ``WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"]`` keys and their defaults
#: (``PROMPT`` ``None``: the built-in prompt).
IMAGE_DESCRIPTION_DEFAULTS: ImageDescriptionSettings = {
    "ALIAS": "default",
    "PROMPT": None,  # type: ignore[typeddict-item]
}


@functools.cache
def get_image_description_settings() -> ImageDescriptionSettings:
    """``WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"]`` with defaults filled in;
    a malformed value (which the checks report) falls back to its default."""
    return _merged_settings(  # type: ignore[return-value]
        IMAGE_DESCRIPTION_KEY,
        IMAGE_DESCRIPTION_DEFAULTS,
        {
            "ALIAS": lambda alias: isinstance(alias, str) and bool(alias),
            "PROMPT": lambda prompt: isinstance(prompt, str) and bool(prompt.strip()),
        },
    )


def clear_cache() -> None:
    """Forget everything read from settings. (Modules above this one that
    build things from settings connect their own ``setting_changed``
    receivers: nothing here imports upwards.)"""
    get_backend_settings.cache_clear()
    get_usage_settings.cache_clear()
    get_circuit_breaker_settings.cache_clear()
    get_embedding_cache_settings.cache_clear()
    get_image_description_settings.cache_clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        clear_cache()
