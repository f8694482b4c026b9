"""The async methods are the sync API's equals: the same scope arguments,
and never a database query on the event loop's thread.

Every async method is called from an ASGI view (``tests/async_views.py``,
through Django's ``AsyncClient``) with Django's async-unsafe guard on (the
tests never set ``DJANGO_ALLOW_ASYNC_UNSAFE``): a query on the loop raises
``SynchronousOnlyOperation`` there. The tests are transactional, since the
threads doing the database work must see their data.
"""

import os

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.cache import cache
from django.db import connections
from django.test import AsyncClient, override_settings
from wagtail.models import Page, Site

from tests import async_views
from tests.testapp.models import ArticlePage
from tests.utils import (
    HASHING_EMBEDDING,
    chat_backend_settings,
    embedding_backend_settings,
    make_user,
    root_page,
)
from wagtail_vector_index import ai
from wagtail_vector_index.index import VectorIndex
from wagtail_vector_index.models import AISettings
from wagtail_vector_index.parameters import ALL_ALIASES

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.urls("tests.async_views"),
]

MESSAGES = [{"role": "user", "content": "Hello?"}]
CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
#: What a scope argument forwarded to the provider would show up as.
SCOPE_NAMES = {"request", "site", "user", "locale", "filter", "history"}


def test_the_guard_is_on():
    assert not os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")


class Articles(VectorIndex):
    name = "async-articles"

    def get_querysets(self):
        return [ArticlePage.objects.all()]


@pytest.fixture
def configured(provider):
    """Chat over HTTP to the loopback provider, with a fallback; offline
    embeddings for the index, and HTTP ones with a fallback of the same
    model."""
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {
                "default": chat_backend_settings(provider, FALLBACKS=["backup"]),
                "backup": chat_backend_settings(provider, model="openai/backup"),
            },
            "EMBEDDING_BACKENDS": {
                "default": {
                    "CLASS": HASHING_EMBEDDING,
                    "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": 64},
                },
                "http": embedding_backend_settings(provider, FALLBACKS=["http2"]),
                "http2": embedding_backend_settings(provider),
            },
        }
    ):
        yield provider


@pytest.fixture
def sites(configured):
    root = root_page()
    home_a = root.add_child(instance=Page(title="A", slug="async-a"))
    home_b = root.add_child(instance=Page(title="B", slug="async-b"))
    Site.objects.all().delete()
    # The test client's host, "testserver", finds the default site: B.
    site_a = Site.objects.create(hostname="a.example", root_page=home_a)
    site_b = Site.objects.create(
        hostname="b.example", root_page=home_b, is_default_site=True
    )
    pages = {
        "a": home_a.add_child(
            instance=ArticlePage(title="Bread in A", body="<p>bread oven yeast</p>")
        ),
        "b": home_b.add_child(
            instance=ArticlePage(title="Bread in B", body="<p>bread oven flour</p>")
        ),
    }
    for site, temperature in ((site_a, 0.2), (site_b, 0.6)):
        overrides = AISettings.for_site(site)
        overrides.set_overrides("chat", ALL_ALIASES, {"temperature": temperature})
        overrides.set_overrides("chat", "backup", {"temperature": temperature + 1})
        overrides.save()
    index = Articles()
    index.update()
    yield index, site_a, site_b, pages
    cache.clear()


def in_asgi_view(call, *, user=None):
    """``call(request)``'s result, awaited in an ASGI view (its site: B)."""
    async_views.work["call"] = call

    async def get():
        client = AsyncClient()
        if user is not None:
            await client.aforce_login(user)
        try:
            response = await client.get("/run/")
            return response.json()
        finally:
            # The ORM ran in asgiref's threads: close their connections.
            await sync_to_async(connections.close_all)()

    try:
        return async_to_sync(get)()
    finally:
        async_views.work.clear()


def sent(provider, path=CHAT):
    return [request.json for request in provider.requests_to(path)]


# -- aquery(request=...) -------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_aquery_takes_the_request_like_query(sites, stream):
    index, _site_a, _site_b, pages = sites
    editor = make_user("async-editor")

    async def call(request):
        result = await index.aquery("bread", request=request, stream=stream)
        if stream:
            answer = "".join([part["content"] async for part in result.stream])
        else:
            answer = result.answer
        return {"answer": answer, "sources": [page.pk for page in result.sources]}

    result = in_asgi_view(call, user=editor)

    assert result["answer"]
    # The request's site (b.example) scopes the sources...
    assert result["sources"] == [pages["b"].pk]


def test_aquery_with_the_site_already_found_for_the_request(sites, configured):
    index, _site_a, site_b, pages = sites

    async def call(request):
        # A view (or Wagtail's serve) found the site before: it is cached
        # on the request.
        await sync_to_async(Site.find_for_request)(request)
        result = await index.aquery("bread", request=request)
        return {"answer": result.answer, "sources": [p.pk for p in result.sources]}

    result = in_asgi_view(call)

    assert result["answer"]
    assert result["sources"] == [pages["b"].pk]
    (body,) = sent(configured)
    # ...its overrides are sent, and no scope argument is.
    assert body["temperature"] == 0.6
    assert not SCOPE_NAMES & set(body)


def test_aquery_and_query_send_the_same(sites, configured, rf):
    index, *_ = sites
    request = rf.get("/", HTTP_HOST="b.example")
    index.query("bread", request=request, max_tokens=5)

    async def call(request):
        await index.aquery("bread", request=request, max_tokens=5)
        return {}

    in_asgi_view(call)

    sync_body, async_body = sent(configured)
    assert sync_body == async_body


# -- site-bound backends with fallbacks, the settings cache cold ---------------


@pytest.mark.parametrize("stream", [False, True])
def test_achat_falls_back_with_the_sites_overrides_on_a_cold_cache(
    sites, configured, stream
):
    _index, _site_a, site_b, _pages = sites

    async def call(request):
        backend = await sync_to_async(ai.get_chat_backend)(site=site_b)
        cache.clear()  # The settings cache missed (expired, another process).
        configured.fail("500")
        response = await backend.achat(messages=MESSAGES, stream=stream)
        if stream:
            text = "".join([part["content"] async for part in response])
        else:
            text = response.text
        return {"alias": response.alias, "text": text}

    result = in_asgi_view(call)

    assert result == {"alias": "backup", "text": configured.state.reply}
    primary, backup = sent(configured)
    assert (primary["temperature"], backup["temperature"]) == (0.6, 1.6)


@pytest.mark.parametrize("method", ["aembed", "aembed_matrix"])
def test_aembed_falls_back_on_a_cold_cache(sites, configured, method):
    _index, _site_a, site_b, _pages = sites

    async def call(request):
        backend = await sync_to_async(ai.get_embedding_backend)("http", site=site_b)
        cache.clear()
        configured.fail("500")
        vectors = await getattr(backend, method)(["one", "two"])
        return [list(map(float, vector)) for vector in vectors]

    vectors = in_asgi_view(call)

    assert len(vectors) == 2 and len(vectors[0]) == 8
    assert len(sent(configured, EMBEDDINGS)) == 2  # Failed, then the fallback.


def test_aembed_through_the_embedding_cache(sites, configured):
    _index, _site_a, site_b, _pages = sites

    async def call(request):
        backend = await sync_to_async(ai.get_embedding_backend)("http", site=site_b)
        backend = backend.with_cache()
        first = await backend.aembed(["one", "two"])
        second = await backend.aembed_matrix(["two", "one"])
        return [len(first), len(second)]

    assert in_asgi_view(call) == [2, 2]
    assert len(sent(configured, EMBEDDINGS)) == 1  # The second from the cache.


# -- the same arguments ----------------------------------------------------------

#: Public coroutine functions with no sync twin, and why.
WITHOUT_TWIN = {
    # Helpers that exist for async callers only: they run sync work in a thread.
    "wagtail_vector_index.usage.finish_async",
    "wagtail_vector_index.usage.run_sync",
}


def _namespaces():
    """``(dotted name, namespace)`` of every module of the package (its
    migrations aside) and of every class defined in one."""
    import importlib
    import inspect
    import pkgutil

    import wagtail_vector_index

    for info in pkgutil.walk_packages(
        wagtail_vector_index.__path__, "wagtail_vector_index."
    ):
        if ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        yield info.name, vars(module)
        for name, value in vars(module).items():
            if inspect.isclass(value) and value.__module__ == info.name:
                yield f"{info.name}.{name}", vars(value)


def _async_twins():
    """``(dotted name, async function, its sync twin or None)`` for every
    public coroutine or async generator function of the package (``aname``
    and ``name``, ``__aiter__`` and ``__iter__``)."""
    import inspect

    for where, namespace in _namespaces():
        for name, value in namespace.items():
            if inspect.ismodule(value):
                # Python 3.12.0 and 3.12.1 take the inspect module itself for
                # a coroutine function (it holds the marker they look for).
                continue
            function = getattr(value, "__func__", value)  # static/class methods
            if not (
                inspect.iscoroutinefunction(function)
                or inspect.isasyncgenfunction(function)
            ):
                continue
            if name.startswith("__a") and name.endswith("__"):
                twin_name = "__" + name[3:]
            elif name.startswith("a") and not name.startswith("_"):
                twin_name = name[1:]
            elif name.startswith("_"):
                continue  # Private: its callers are ours.
            else:
                twin_name = None
            twin = namespace.get(twin_name) if twin_name else None
            yield f"{where}.{name}", function, getattr(twin, "__func__", twin)


def _parameters(function):
    import inspect

    return [
        (parameter.name, parameter.kind, parameter.default)
        for parameter in inspect.signature(function).parameters.values()
    ]


def test_every_public_async_function_takes_its_sync_twins_arguments():
    pairs = list(_async_twins())
    names = {name for name, _, _ in pairs}
    # The walk finds what it must (a broken walk would pass vacuously).
    assert {
        "wagtail_vector_index.index.base.VectorIndex.aquery",
        "wagtail_vector_index.ai_utils.backends.base.BaseChatBackend.achat",
        "wagtail_vector_index.ai_utils.backends.base.BaseEmbeddingBackend.aembed",
        "wagtail_vector_index.ai_utils.types.AIStreamingResponse.__aiter__",
    } <= names
    differing = {
        name: (_parameters(function), _parameters(twin))
        for name, function, twin in pairs
        if twin is not None and _parameters(function) != _parameters(twin)
    }
    assert differing == {}
    without = {name for name, _, twin in pairs if twin is None}
    assert without == WITHOUT_TWIN
