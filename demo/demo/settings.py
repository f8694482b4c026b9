"""Settings of the demo site (``make demo``).

Configuration comes from the environment and from ``.env`` at the repository
root, if there is one (copy ``.env.example``); the environment wins. Without
``OPENAI_API_KEY`` or ``OLLAMA_BASE_URL`` the site runs on the offline
backends, so it works on a machine without credentials or internet.
"""

import os
from pathlib import Path

# LiteLLM must never try to download its model map: the bundled one will do.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import environ  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

DEMO_DIR = Path(__file__).resolve().parent.parent
REPOSITORY = DEMO_DIR.parent
ENV_FILE = REPOSITORY / ".env"

if ENV_FILE.is_file():
    environ.Env.read_env(ENV_FILE, overwrite=False)


def _setting(name: str, default: str = "") -> str:
    """The value of ``name`` from the environment or ``.env``; an empty value
    (``OPENAI_API_KEY=`` as in ``.env.example``) counts as unset.

    Read from ``os.environ`` (where ``read_env`` put ``.env``) rather than with
    django-environ's ``env.str``, which takes a value starting with ``$`` for the
    name of another variable: a generated secret key may start with one.
    """
    return os.environ.get(name, "").strip() or default


def _positive_int(name: str, default: int) -> int:
    value = _setting(name, str(default))
    if not value.isdigit() or int(value) <= 0:
        raise ImproperlyConfigured(
            f"{name} must be a positive whole number, not {value!r} (see .env)."
        )
    return int(value)


def _ollama_model(model_id: str) -> str:
    """``llama3`` as LiteLLM's ``ollama/llama3``; full ids are kept as given."""
    if model_id.startswith(("ollama/", "ollama_chat/")):
        return model_id
    return f"ollama/{model_id}"


SECRET_KEY = _setting(
    "DJANGO_SECRET_KEY", "django-insecure-demo-only-do-not-use-in-production"
)
DEBUG = environ.Env.parse_value(_setting("DJANGO_DEBUG", "true"), bool)
ALLOWED_HOSTS = [
    host.strip()
    for host in _setting("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    "wagtail_vector_index",
    "home",
    "wagtail.contrib.settings",
    "wagtail.contrib.redirects",
    "wagtail.embeds",
    "wagtail.sites",
    "wagtail.users",
    "wagtail.snippets",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.search",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "wagtail.contrib.redirects.middleware.RedirectMiddleware",
]

ROOT_URLCONF = "demo.urls"
WSGI_APPLICATION = "demo.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DEMO_DIR / "db.sqlite3",
        # The usage ledger writes from a thread of its own: transactions that
        # take the write lock at once (and wait for it) never fail with
        # "database is locked" when a read turns into a write.
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
    }
}

AUTH_PASSWORD_VALIDATORS = []  # The demo's login is admin / admin.

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DEMO_DIR / "static_collected"
MEDIA_URL = "/media/"
MEDIA_ROOT = DEMO_DIR / "media"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

WAGTAIL_SITE_NAME = "wagtail_vector_index demo"
# Offline, quiet consoles: no request to Wagtail's release feed from the
# dashboard, and no Gravatar images (Wagtail's own initials avatar instead).
WAGTAIL_ENABLE_UPDATE_CHECK = False
WAGTAIL_GRAVATAR_PROVIDER_URL = None
WAGTAILADMIN_BASE_URL = "http://127.0.0.1:8000"
WAGTAILSEARCH_BACKENDS = {"default": {"BACKEND": "wagtail.search.backends.database"}}
WAGTAILDOCS_EXTENSIONS = ["csv", "docx", "odt", "pdf", "pptx", "rtf", "txt", "xlsx"]


# AI backends, chosen by what .env (or the environment) provides. Helpers are
# lower case so that they do not become settings (the API key least of all:
# LiteLLM reads it from the environment, where .env was loaded above).

_LITELLM_CHAT = "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMChatBackend"
_LITELLM_EMBEDDING = (
    "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMEmbeddingBackend"
)
_ECHO_CHAT = {
    "CLASS": "wagtail_vector_index.ai_utils.backends.offline.EchoChatBackend",
    # A short pause between streamed words, so streaming can be seen working.
    "CONFIG": {"MODEL_ID": "echo", "DEFAULT_PARAMETERS": {"delay": 0.05}},
}
_HASHING_EMBEDDING = {
    "CLASS": "wagtail_vector_index.ai_utils.backends.offline.HashingEmbeddingBackend",
    "CONFIG": {"MODEL_ID": "hashing", "EMBEDDING_OUTPUT_DIMENSIONS": 384},
}


def _openai_backends() -> tuple[dict, dict]:
    embedding = {"MODEL_ID": _setting("EMBEDDING_MODEL_ID", "text-embedding-3-small")}
    if _setting("EMBEDDING_OUTPUT_DIMENSIONS"):
        # Needed only for models LiteLLM does not know (it knows OpenAI's).
        embedding["EMBEDDING_OUTPUT_DIMENSIONS"] = _positive_int(
            "EMBEDDING_OUTPUT_DIMENSIONS", 1536
        )
    chat = {
        "MODEL_ID": _setting("CHAT_MODEL_ID", "gpt-4o-mini"),
        "DEFAULT_PARAMETERS": {"temperature": 0.7},
    }
    return (
        {"CLASS": _LITELLM_CHAT, "CONFIG": chat},
        {"CLASS": _LITELLM_EMBEDDING, "CONFIG": embedding},
    )


def _ollama_backends(base_url: str) -> tuple[dict, dict]:
    # LiteLLM's model map does not know most Ollama models: the token limit and
    # the vector size are given here, or LiteLLM would ask the server.
    chat = {
        "MODEL_ID": _ollama_model(_setting("CHAT_MODEL_ID", "llama3")),
        "DEFAULT_PARAMETERS": {"api_base": base_url},
        "TOKEN_LIMIT": 8192,
    }
    embedding = {
        "MODEL_ID": _ollama_model(_setting("EMBEDDING_MODEL_ID", "nomic-embed-text")),
        "DEFAULT_PARAMETERS": {"api_base": base_url},
        "TOKEN_LIMIT": 8192,
        "EMBEDDING_OUTPUT_DIMENSIONS": _positive_int(
            "EMBEDDING_OUTPUT_DIMENSIONS", 768
        ),
    }
    return (
        {"CLASS": _LITELLM_CHAT, "CONFIG": chat},
        {"CLASS": _LITELLM_EMBEDDING, "CONFIG": embedding},
    )


if _setting("OPENAI_API_KEY"):
    DEMO_AI_PROVIDER = "openai"
    _chat, _embedding = _openai_backends()
elif _setting("OLLAMA_BASE_URL"):
    DEMO_AI_PROVIDER = "ollama"
    _chat, _embedding = _ollama_backends(_setting("OLLAMA_BASE_URL").rstrip("/"))
else:
    DEMO_AI_PROVIDER = "offline"
    _chat, _embedding = _ECHO_CHAT, _HASHING_EMBEDDING

_embeddings = {"default": _embedding, "offline": _HASHING_EMBEDDING}
if environ.Env.parse_value(_setting("LOCAL_EMBEDDINGS", "false"), bool):
    # all-MiniLM-L6-v2 run in the process (the [local] extra): a real semantic
    # model without network or key, to compare with the others
    # (evaluate_vector_index --compare-alias local). Off by default: without
    # sentence-transformers installed, check E040 would fail the demo.
    _embeddings["local"] = {
        "CLASS": (
            "wagtail_vector_index.ai_utils.backends.local."
            "SentenceTransformersEmbeddingBackend"
        ),
        "CONFIG": {},
    }

WAGTAIL_VECTOR_INDEX = {
    "CHAT_BACKENDS": {
        "default": _chat,
        # Always there, so a real model can be compared with the offline one.
        "offline": _ECHO_CHAT,
    },
    "EMBEDDING_BACKENDS": _embeddings,
    # Publishing, unpublishing and deleting articles updates the index.
    "AUTO_UPDATE": True,
    # "Describe with AI" in the image editor and describe_images: the default
    # alias (the offline echo backend, which takes images and answers with
    # their name and size, labelled offline; or OpenAI's gpt-4o-mini, which
    # sees them). Ollama's llama3 takes no images: the offline alias then
    # (for a vision model such as llava, use "default" and set
    # "SUPPORTS_VISION": True in its CONFIG).
    "IMAGE_DESCRIPTION": {
        "ALIAS": "offline" if DEMO_AI_PROVIDER == "ollama" else "default"
    },
}
