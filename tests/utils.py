"""Helpers the tests share: backend settings for the loopback provider,
offline settings for the index tests, and what the admin-page tests need.

Fixtures live in ``conftest.py``; everything else tests import from here.
"""

import json
import socket

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.test import Client

OPENAI_CLASS = "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMChatBackend"
OPENAI_EMBEDDING_CLASS = (
    "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMEmbeddingBackend"
)
TEST_API_KEY = "sk-test-secret-key-1234"
#: A key not shaped like sk-...: it must be hidden all the same.
PLAIN_KEY = "plainAdminSecret98765"

ECHO_CHAT = "wagtail_vector_index.ai_utils.backends.offline.EchoChatBackend"
HASHING_EMBEDDING = (
    "wagtail_vector_index.ai_utils.backends.offline.HashingEmbeddingBackend"
)


def _backend_settings(provider, backend_class, model, defaults, config):
    """A backend entry whose model talks to ``provider`` over HTTP (the Ollama
    API for ``ollama*/`` models, the OpenAI API otherwise)."""
    parameters = {"api_base": provider.openai_base, "timeout": 2}
    if model.startswith(("ollama/", "ollama_chat/")):
        parameters["api_base"] = provider.url
    elif backend_class == OPENAI_CLASS:
        parameters["max_retries"] = 0  # Failure tests must not wait for retries.
    parameters.update(config.pop("DEFAULT_PARAMETERS", {}))
    return {
        "CLASS": backend_class,
        "CONFIG": {
            "MODEL_ID": model,
            # Tests of one failure see it raised, not retried (the retry
            # tests set their own).
            "MAX_RETRIES": 0,
            **defaults,
            "DEFAULT_PARAMETERS": parameters,
            **config,
        },
    }


def chat_backend_settings(provider, model="openai/test-chat", **config):
    """A ``CHAT_BACKENDS`` entry that talks to ``provider`` over HTTP."""
    return _backend_settings(
        provider, OPENAI_CLASS, model, {"TOKEN_LIMIT": 4096}, config
    )


def embedding_backend_settings(provider, model="openai/test-embed", **config):
    """An ``EMBEDDING_BACKENDS`` entry that talks to ``provider`` over HTTP."""
    defaults = {"TOKEN_LIMIT": 8191, "EMBEDDING_OUTPUT_DIMENSIONS": 8}
    return _backend_settings(provider, OPENAI_EMBEDDING_CLASS, model, defaults, config)


# -- the index tests -----------------------------------------------------------

ECHO = "wagtail_vector_index.ai_utils.backends.offline"
OFFLINE = {
    "CHAT_BACKENDS": {"default": {"CLASS": f"{ECHO}.EchoChatBackend", "CONFIG": {}}},
    "EMBEDDING_BACKENDS": {
        "default": {
            "CLASS": f"{ECHO}.HashingEmbeddingBackend",
            "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": 512},
        }
    },
}
# tests/settings_postgres.py runs these tests against another storage.
if getattr(settings, "WVI_TEST_STORAGE", None):
    OFFLINE["STORAGE"] = settings.WVI_TEST_STORAGE

ARTICLES = {
    "Growing tomatoes": "Tomatoes need sun, water and rich soil in the garden.",
    "Pruning roses": "Roses in the garden flower better when pruned in spring.",
    "Watching stars": "A telescope shows planets, stars and distant galaxies at night.",
    "Baking bread": "Flour, water, yeast and salt make bread in a hot oven.",
    "Cycling in rain": "Mudguards and a rain jacket keep a cyclist dry on wet roads.",
}


# -- the admin pages -------------------------------------------------------------

CHAT_URL = "wagtail_vector_index:chat"
STREAM_URL = "wagtail_vector_index:chat_stream"
SAVE_URL = "wagtail_vector_index:chat_save_overrides"
EMBEDDINGS_URL = "wagtail_vector_index:embeddings"
INDEXES_URL = "wagtail_vector_index:indexes"
INDEX_SEARCH_URL = "wagtail_vector_index:embeddings_index_search"
BACKENDS_URL = "wagtail_vector_index:backends"
BACKENDS_CHECK_URL = "wagtail_vector_index:backends_check"
ALL_URLS = [
    CHAT_URL,
    STREAM_URL,
    SAVE_URL,
    EMBEDDINGS_URL,
    INDEX_SEARCH_URL,
    INDEXES_URL,
    BACKENDS_URL,
    BACKENDS_CHECK_URL,
]


def make_user(username, *permissions, superuser=False):
    if superuser:
        return User.objects.create_superuser(username, f"{username}@example.com")
    user = User.objects.create_user(username, f"{username}@example.com")
    codenames = {
        "access_admin": ("wagtailadmin", "access_admin"),
        "use_ai_test_pages": ("wagtail_vector_index", "use_ai_test_pages"),
        "change_aisettings": ("wagtail_vector_index", "change_aisettings"),
    }
    for name in ("access_admin", *permissions):
        app_label, codename = codenames[name]
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def logged_in(user, **kwargs):
    client = Client(**kwargs)
    client.force_login(user)
    return client


def chat_data(site=None, side="a", message="Hello there", **fields):
    """A chat form submission; ``fields`` are prefixed with the side."""
    data = {
        "site": site.pk if site else "",
        "system_prompt": "",
        "message": message,
        "side": side,
        f"{side}-alias": "default",
    }
    data.update({f"{side}-{name}": value for name, value in fields.items()})
    return data


def lines(response):
    """The JSON lines of a (streamed or not) ndjson response."""
    assert response["Content-Type"] == "application/x-ndjson"
    if response.streaming:
        content = b"".join(response.streaming_content).decode()
    else:
        content = response.content.decode()
    return [json.loads(line) for line in content.splitlines()]


def chat_requests(provider):
    return provider.requests_to("/v1/chat/completions")


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_async(coroutine_function):
    """Run ``coroutine_function`` with ``async_to_sync``: the sync parts of
    the ASGI request (the view, the ORM) then run in this thread, inside the
    test's transaction, while the answer is streamed by the event loop."""
    return async_to_sync(coroutine_function)()


def backends_settings(provider):
    return {
        "CHAT_BACKENDS": {
            "default": chat_backend_settings(
                provider, DEFAULT_PARAMETERS={"temperature": 0.4}
            ),
            "offline": {"CLASS": ECHO_CHAT, "CONFIG": {}},
        },
        "EMBEDDING_BACKENDS": {"default": embedding_backend_settings(provider)},
    }


def root_page():
    """Wagtail's root page, made again (with the default locale) when a
    transactional test run before emptied the tables that its migrations
    fill."""
    from django.conf import settings
    from wagtail.coreutils import get_supported_content_language_variant
    from wagtail.models import Locale, Page

    root = Page.get_first_root_node()
    if root is None:
        language = get_supported_content_language_variant(settings.LANGUAGE_CODE)
        Locale.objects.get_or_create(language_code=language)
        root = Page.add_root(instance=Page(title="Root", slug="root"))
    return root


def add_articles(slug):
    """A home page (``slug``) under the root with one ``ArticlePage`` per entry
    of :data:`ARTICLES`; the pages by title."""
    from wagtail.models import Page

    from tests.testapp.models import ArticlePage

    home = root_page().add_child(instance=Page(title="Home", slug=slug))
    return {
        title: home.add_child(
            instance=ArticlePage(title=title, body=f"<p>{body}</p>", intro="")
        )
        for title, body in ARTICLES.items()
    }


def spy_embedded(monkeypatch):
    """Every text the offline embedding backend is asked to embed, one list
    per request (searches' queries included)."""
    from wagtail_vector_index.ai_utils.backends.offline import (
        HashingEmbeddingBackend,
    )

    batches = []
    real = HashingEmbeddingBackend._embed_batch

    def spy(self, batch, *args, **kwargs):
        batches.append(list(batch))
        return real(self, batch, *args, **kwargs)

    monkeypatch.setattr(HashingEmbeddingBackend, "_embed_batch", spy)
    return batches
