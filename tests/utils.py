"""Helpers the tests share: backend settings for the loopback provider,
offline settings for the index tests, and what the admin-page tests need.

Fixtures live in ``conftest.py``; everything else tests import from here.
"""

import io
import json
import socket

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib.auth.models import Group, Permission, User
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

    home = root_page().add_child(instance=Page(title="Home", slug=slug))
    return {
        title: add_article(home, title, body, intro="")
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


# -- the editor features -------------------------------------------------------

#: The password of the users the editor helpers make (browser tests log in
#: with it).
PASSWORD = "pw-editor"


def root_collection():
    """Wagtail's root collection, made again when a transactional test run
    before flushed it."""
    from wagtail.models import Collection

    return Collection.get_first_root_node() or Collection.add_root(name="Root")


def picture_file(name="square.png", size=(1600, 900), colour="red"):
    """A PNG of one ``colour``, as a file to give an image model."""
    import PIL.Image
    from django.core.files.images import ImageFile

    data = io.BytesIO()
    PIL.Image.new("RGB", size, colour).save(data, "PNG")
    return ImageFile(data, name=name)


def make_image(title="Red square", collection=None, description="", **kwargs):
    """An image (the project's image model) of :func:`picture_file`
    (``kwargs``), in the root collection unless ``collection`` is given."""
    from wagtail.images import get_image_model

    return get_image_model().objects.create(
        title=title,
        file=picture_file(**kwargs),
        collection=collection or root_collection(),
        description=description,
    )


def make_editor(username, *, ai=True, pages=True, images=False):
    """An editor with admin access (password :data:`PASSWORD`); with ``ai``
    the ``use_ai_in_editor`` permission, with ``pages`` the rights to add,
    change and publish every page, with ``images`` to add and change the
    images of the root collection."""
    from wagtail.models import GroupCollectionPermission, GroupPagePermission

    group = Group.objects.create(name=f"{username} editors")
    group.permissions.add(
        Permission.objects.get(
            content_type__app_label="wagtailadmin", codename="access_admin"
        )
    )
    if ai:
        group.permissions.add(
            Permission.objects.get(
                content_type__app_label="wagtail_vector_index",
                codename="use_ai_in_editor",
            )
        )
    granted = []
    if pages:
        granted += [
            (GroupPagePermission, {"page": root_page()}, "wagtailcore", codename)
            for codename in ("add_page", "change_page", "publish_page")
        ]
    if images:
        granted += [
            (
                GroupCollectionPermission,
                {"collection": root_collection()},
                "wagtailimages",
                codename,
            )
            for codename in ("add_image", "change_image")
        ]
    for model, where, app_label, codename in granted:
        model.objects.create(
            group=group,
            permission=Permission.objects.get(
                content_type__app_label=app_label, codename=codename
            ),
            **where,
        )
    user = User.objects.create_user(username, f"{username}@example.com", PASSWORD)
    user.groups.add(group)
    return user


def only_site(slug, hostname="localhost"):
    """A home page (``slug``) under the root, served by the only site, the
    default one, at ``hostname``."""
    from wagtail.models import Page, Site

    home = root_page().add_child(instance=Page(title="Home", slug=slug))
    Site.objects.all().delete()
    return Site.objects.create(
        hostname=hostname, port=80, root_page=home, is_default_site=True
    )


def add_article(parent, title, body, **fields):
    """An ``ArticlePage`` under ``parent`` whose body is the paragraph
    ``body``."""
    from tests.testapp.models import ArticlePage

    return parent.add_child(
        instance=ArticlePage(title=title, body=f"<p>{body}</p>", **fields)
    )


def use_up(scope, period, tokens):
    """The ledger's total of ``scope`` (``"site:1"``, ``"user:2"``) for the
    current ``period`` (``"day"``, ``"month"``): ``tokens`` used in one
    call."""
    from wagtail_vector_index import usage
    from wagtail_vector_index.models import AIUsageTotal

    return AIUsageTotal.objects.create(
        period=period,
        start=usage.period_start(period),
        scope=scope,
        tokens=tokens,
        calls=1,
    )


def exhaust_site_budget(site, tokens=100):
    """A monthly budget of ``tokens`` for ``site`` (Settings › AI settings),
    all of it used this month."""
    from wagtail_vector_index.models import AISettings

    settings = AISettings.for_site(site)
    settings.monthly_budget_tokens = tokens
    settings.save()
    use_up(f"site:{site.pk}", "month", tokens)
