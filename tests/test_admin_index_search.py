"""The "Search an index" tab of the embeddings test page: permission, POST
only, CSRF, real searches of the test app's indexes, escaping, and the
messages for indexes that cannot be searched or providers that fail."""

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.urls import reverse
from wagtail.models import Site

from tests.testapp.models import ArticlePage, Book
from tests.utils import TEST_API_KEY, embedding_backend_settings, logged_in, make_user
from wagtail_vector_index.index import EmbeddingField, VectorIndex, registry

pytestmark = pytest.mark.django_db

HASHING = "wagtail_vector_index.ai_utils.backends.offline.HashingEmbeddingBackend"
EMBEDDINGS_URL = "wagtail_vector_index:embeddings"
SEARCH_URL = "wagtail_vector_index:embeddings_index_search"
ARTICLES_INDEX = "testapp.articlepage"


def offline_settings(dimensions=512, **extra):
    return {
        "EMBEDDING_BACKENDS": {
            "default": {
                "CLASS": HASHING,
                "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": dimensions},
            }
        },
        **extra,
    }


ARTICLES = {
    "Growing tomatoes": "Tomatoes need sun, water and rich soil in the garden.",
    "Pruning roses": "Roses in the garden flower better when pruned in spring.",
    "Watching stars": "A telescope shows planets, stars and distant galaxies at night.",
    "Baking bread": "Flour, water, yeast and salt make bread in a hot oven.",
}


@pytest.fixture(autouse=True)
def offline():
    # Rate-limit counters must not leak between tests.
    cache.clear()
    with override_settings(WAGTAIL_VECTOR_INDEX=offline_settings()):
        yield
    cache.clear()


@pytest.fixture
def editor():
    """The test pages, but no permission on pages."""
    return make_user("editor", "use_ai_test_pages")


@pytest.fixture
def admin():
    return make_user("root", superuser=True)


@pytest.fixture
def articles():
    """Live articles under the default site's home page (so they have URLs)."""
    home = Site.objects.get(is_default_site=True).root_page
    return {
        title: home.add_child(
            instance=ArticlePage(title=title, body=f"<p>{body}</p>", intro="")
        )
        for title, body in ARTICLES.items()
    }


def search(client, query="growing tomatoes in my garden", **fields):
    data = {"search-index": ARTICLES_INDEX, "search-query": query, "search-limit": 3}
    data.update({f"search-{name}": value for name, value in fields.items()})
    return client.post(reverse(SEARCH_URL), data)


# -- access ------------------------------------------------------------------------


def test_search_url_is_next_to_the_embeddings_page():
    assert reverse(SEARCH_URL) == "/admin/ai/embeddings/search-index/"


@pytest.mark.parametrize("method", ["get", "post"])
def test_search_is_forbidden_without_the_permission(articles, method):
    ArticlePage.vector_index.update()
    client = logged_in(make_user("outsider"))
    response = getattr(client, method)(
        reverse(SEARCH_URL),
        {"search-index": ARTICLES_INDEX, "search-query": "tomatoes"},
    )
    assert response.status_code == 403
    assert b"Growing tomatoes" not in response.content


def test_search_is_post_only(editor):
    assert logged_in(editor).get(reverse(SEARCH_URL)).status_code == 405


def test_csrf_is_enforced(articles, editor):
    ArticlePage.vector_index.update()
    client = logged_in(editor, enforce_csrf_checks=True)
    assert search(client).status_code == 403
    token = client.get(reverse(EMBEDDINGS_URL)).context["csrf_token"]
    response = client.post(
        reverse(SEARCH_URL),
        {
            "search-index": ARTICLES_INDEX,
            "search-query": "tomatoes",
            "search-limit": 3,
            "csrfmiddlewaretoken": str(token),
        },
    )
    assert response.status_code == 200
    assert response.context["search_result"].hits


# -- the form ----------------------------------------------------------------------


def test_page_has_a_search_tab_listing_the_indexes(editor):
    response = logged_in(editor).get(reverse(EMBEDDINGS_URL))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-controller="w-tabs"' in html
    assert 'href="#tab-index-search"' in html and "Search an index" in html
    # The texts tab is shown first on a GET.
    assert 'data-w-tabs-active-panel-id-value="tab-texts"' in html
    choices = dict(response.context["search_form"].fields["index"].choices)
    assert choices[ARTICLES_INDEX] == "testapp.articlepage (Article pages)"
    assert choices["testapp.book"] == "testapp.book (Books)"
    assert choices["everything"] == "everything (Article pages, Books)"
    assert f'action="{reverse(SEARCH_URL)}"' in html
    assert 'name="search-query"' in html and 'name="search-limit"' in html
    # The texts form keeps its own field names.
    assert 'name="query"' in html and 'name="texts"' in html


def test_no_index_registered(editor, monkeypatch):
    monkeypatch.setattr(registry, "get_indexes", dict)
    client = logged_in(editor)
    html = client.get(reverse(EMBEDDINGS_URL)).content.decode()
    assert "No vector index is registered" in html
    assert "VectorIndexedMixin" in html and "update_vector_indexes" in html
    assert "docs/vector-indexes.md" in html
    assert 'name="search-query"' not in html
    # A POST anyway: a form error and the same explanation, no crash.
    response = search(client)
    assert response.status_code == 200
    assert response.context["search_form"].errors["index"]
    assert "No vector index is registered" in response.content.decode()


def test_forged_index_name_is_a_form_error(articles, editor):
    ArticlePage.vector_index.update()
    response = search(logged_in(editor), index="../../etc/passwd<b>")
    assert response.status_code == 200
    errors = response.context["search_form"].errors
    assert "Select a valid choice" in errors["index"][0]
    assert "search_result" not in response.context
    html = response.content.decode()
    assert "<b>" not in html.split('id="tab-index-search"')[1]
    # The page opens on the tab with the error.
    assert 'data-w-tabs-active-panel-id-value="tab-index-search"' in html


@pytest.mark.parametrize(
    ("fields", "field"),
    [({"limit": 0}, "limit"), ({"limit": 21}, "limit"), ({"query": "  "}, "query")],
)
def test_invalid_fields(articles, editor, fields, field):
    ArticlePage.vector_index.update()
    response = search(logged_in(editor), **fields)
    assert response.context["search_form"].errors[field]
    assert "search_result" not in response.context


# -- searching ---------------------------------------------------------------------


def test_search_ranks_the_matching_page_first(articles, admin):
    ArticlePage.vector_index.update()
    response = search(logged_in(admin))
    assert response.status_code == 200
    html = response.content.decode()
    result = response.context["search_result"]
    titles = [hit.title for hit in result.hits]
    assert titles[0] == "Growing tomatoes"
    assert len(titles) == 3
    # Scores, best first, and each shown with three decimals.
    scores = [hit.score for hit in result.hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]
    for hit in result.hits:
        assert f"<td>{hit.score:.3f}</td>" in html
    # The matching chunk, the kind of object, links to edit and view it.
    first = result.hits[0]
    assert "Tomatoes need sun" in first.text and first.text in html
    assert first.kind == "Article page"
    page = articles["Growing tomatoes"]
    assert first.edit_url == reverse("wagtailadmin_pages:edit", args=[page.pk])
    assert f'href="{first.edit_url}"' in html
    assert first.live_url and "View live" in html
    # The index's model and dimensions, its size, the time taken.
    assert result.model_id == "hashing" and result.dimensions == 512
    assert (result.objects, result.chunks) == (4, 4)
    assert "<dt>Dimensions</dt><dd>512</dd>" in html
    assert "4 objects, 4 chunks" in html
    assert result.time_display in html
    assert 'data-w-tabs-active-panel-id-value="tab-index-search"' in html


def test_no_edit_link_without_permission_on_the_page(articles, editor):
    ArticlePage.vector_index.update()
    result = search(logged_in(editor)).context["search_result"]
    assert result.hits[0].title == "Growing tomatoes"
    assert all(hit.edit_url is None for hit in result.hits)


def test_only_live_content_is_listed(articles, editor):
    ArticlePage.vector_index.update()
    articles["Growing tomatoes"].unpublish()
    result = search(logged_in(editor)).context["search_result"]
    assert "Growing tomatoes" not in [hit.title for hit in result.hits]


def test_a_custom_index_over_two_models(articles, editor):
    Book.objects.create(title="Tomato diaries", blurb="Growing tomatoes at home.")
    registry.get_index("everything").update()
    response = search(logged_in(editor), index="everything", query="tomato diaries")
    hit = response.context["search_result"].hits[0]
    assert (hit.title, hit.kind, hit.edit_url, hit.live_url) == (
        "Tomato diaries",
        "Book",
        None,
        None,
    )


def test_nothing_above_the_threshold(articles, editor):
    ArticlePage.vector_index.update()
    response = search(logged_in(editor), similarity_threshold="0.99")
    assert response.context["search_result"].hits == []
    assert "similarity of at least 0.99" in response.content.decode()


class RawText(EmbeddingField):
    """Text as stored, not stripped of tags (as a custom field might)."""

    def get_text(self, obj):
        return obj.blurb


class RawBooks(VectorIndex):
    name = "raw-books"

    def get_querysets(self):
        return [Book.objects.all()]

    def get_embedding_fields(self, model):
        return [RawText("blurb")]


def test_chunk_text_and_titles_are_escaped(editor, monkeypatch):
    index = RawBooks()
    monkeypatch.setitem(registry._custom, index.name, index)
    Book.objects.create(
        title="<b>Bold</b> tomatoes", blurb="<script>alert(1)</script> tomatoes"
    )
    index.update()
    response = search(logged_in(editor), index="raw-books", query="tomatoes")
    (hit,) = response.context["search_result"].hits
    assert "<script>alert(1)</script>" in hit.text
    html = response.content.decode()
    assert "<script>alert" not in html and "<b>Bold" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;Bold&lt;/b&gt; tomatoes" in html


# -- indexes that cannot be searched ---------------------------------------------


def test_index_never_built(articles, editor):
    response = search(logged_in(editor))
    assert response.status_code == 200
    html = response.content.decode()
    assert "has not been built yet" in html
    assert f"manage.py update_vector_indexes {ARTICLES_INDEX}" in html
    assert "search_result" not in response.context


def test_empty_index(editor):
    ArticlePage.vector_index.update()  # No articles: built, but empty.
    html = search(logged_in(editor)).content.decode()
    assert "is empty" in html
    assert f"manage.py update_vector_indexes {ARTICLES_INDEX}" in html


def test_index_built_with_another_model(articles, editor):
    ArticlePage.vector_index.update()
    with override_settings(WAGTAIL_VECTOR_INDEX=offline_settings(dimensions=256)):
        response = search(logged_in(editor))
    assert response.status_code == 200
    html = response.content.decode()
    assert "was built with hashing (512 dimensions)" in html
    assert "hashing (256 dimensions)" in html
    assert "Rebuild it: manage.py update_vector_indexes" in html
    assert "help-critical" in html and "Traceback" not in html


def test_checks_before_a_call_do_not_count_against_the_rate_limit(articles, editor):
    with override_settings(
        WAGTAIL_VECTOR_INDEX=offline_settings(**{"TEST_PAGES_RATE_LIMIT": 1})
    ):
        client = logged_in(editor)
        assert "has not been built yet" in search(client).content.decode()
        ArticlePage.vector_index.update()
        assert search(client).context["search_result"].hits
        response = search(client)
    assert response.status_code == 429
    assert "limit of 1 call a minute" in response.content.decode()
    assert "search_result" not in response.context


# -- provider failures -------------------------------------------------------------


@pytest.fixture
def provider_index(provider, articles):
    """The articles index built by the loopback provider's embeddings."""
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "EMBEDDING_BACKENDS": {"default": embedding_backend_settings(provider)}
        }
    ):
        ArticlePage.vector_index.update()
        provider.reset()
        yield provider


def test_search_through_the_provider(provider_index, editor):
    response = search(logged_in(editor))
    result = response.context["search_result"]
    assert result.model_id == "openai/test-embed" and result.dimensions == 8
    assert len(result.hits) == 3
    (request,) = provider_index.requests_to("/v1/embeddings")
    assert request.body["input"] == ["growing tomatoes in my garden"]


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("401", "rejected the credentials"),
        ("500", "reported an internal error"),
        ("malformed", "could not be understood"),
    ],
)
def test_provider_failure_is_shown_readably(provider_index, editor, mode, message):
    provider_index.fail(mode, times=3)
    response = search(logged_in(editor))
    assert response.status_code == 200
    html = response.content.decode()
    assert message in html
    assert "help-critical" in html
    assert TEST_API_KEY not in html and "Traceback" not in html
    assert "search_result" not in response.context
    # The form is kept, on its tab.
    assert response.context["search_form"]["query"].value() == (
        "growing tomatoes in my garden"
    )
    assert 'data-w-tabs-active-panel-id-value="tab-index-search"' in html


# -- the editor's usage ------------------------------------------------------------


@pytest.mark.usefixtures("empty_ledger")
def test_the_search_is_recorded_under_the_editor(provider_index, editor):
    from wagtail_vector_index.models import AIUsageRecord

    search(logged_in(editor))
    (record,) = AIUsageRecord.objects.filter(feature="index search")
    assert record.user_id == editor.pk


@pytest.mark.usefixtures("empty_ledger")
def test_a_used_up_daily_budget_refuses_the_search(provider_index, editor):
    from wagtail_vector_index import usage
    from wagtail_vector_index.models import AIUsageTotal

    AIUsageTotal.objects.create(
        period="day",
        start=usage.period_start("day"),
        scope=f"user:{editor.pk}",
        tokens=500,
        calls=1,
    )
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "EMBEDDING_BACKENDS": {
                "default": embedding_backend_settings(provider_index)
            },
            "USAGE": {"USER_DAILY_BUDGET_TOKENS": 500},
        }
    ):
        response = search(logged_in(editor))
        # Code searching the same index is not under the editor's budget.
        assert ArticlePage.vector_index.search("tomatoes", limit=1)
    assert response.status_code == 200
    assert "search_result" not in response.context
    assert (
        "Your daily AI budget is used up (500 tokens of 500 tokens spent). "
        "Try again tomorrow."
    ) in response.content.decode()
    assert len(provider_index.requests_to("/v1/embeddings")) == 1  # The code's.
