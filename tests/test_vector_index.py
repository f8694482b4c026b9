"""Vector indexes over pages and plain models, on the application database."""

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.test import override_settings
from wagtail.models import Page, PageViewRestriction

from tests.storage import chunk_model, stored_vectors
from tests.testapp.models import ArticlePage, Book
from tests.utils import (
    ARTICLES,
    ECHO,
    OFFLINE,
    embedding_backend_settings,
    root_page,
)
from wagtail_vector_index.index import EmbeddingField, IndexNeedsRebuildError
from wagtail_vector_index.index.chunking import chunk_text, split_tokens
from wagtail_vector_index.models import IndexState

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def offline():
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        yield


@pytest.fixture
def home():
    return root_page().add_child(instance=Page(title="Home", slug="index-home"))


@pytest.fixture
def articles(home):
    pages = {}
    for title, body in ARTICLES.items():
        page = home.add_child(
            instance=ArticlePage(title=title, body=f"<p>{body}</p>", intro="")
        )
        pages[title] = page
    return pages


def test_chunks_carry_important_fields_and_fit_the_limit():
    from wagtail_vector_index import ai

    backend = ai.get_embedding_backend()
    body = " ".join(f"word{i}" for i in range(100))
    chunks = chunk_text(
        backend,
        important=[("Title", "Long read")],
        body=[("Body", body)],
        max_tokens=30,
        overlap=5,
    )
    assert len(chunks) > 3
    for chunk in chunks:
        assert chunk.text.startswith("Title: Long read\n\n")
        assert len(backend.encode(chunk.text)) <= 30
    # Overlap: each chunk starts with the last 5 words of the previous one.
    first, second = (c.text.split("\n\n", 1)[1].split() for c in chunks[:2])
    assert second[:5] == first[-5:]
    assert [c.position for c in chunks] == list(range(len(chunks)))


def test_split_tokens_windows():
    assert split_tokens(list(range(10)), 4, 1) == [
        [0, 1, 2, 3],
        [3, 4, 5, 6],
        [6, 7, 8, 9],
    ]
    assert split_tokens(list(range(3)), 4, 1) == [[0, 1, 2]]
    assert split_tokens([], 4, 1) == []


def test_chunking_with_litellm_token_counts(provider):
    # A LiteLLM model: tokens counted with LiteLLM's tokenizer, not words.
    from wagtail_vector_index import ai

    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "EMBEDDING_BACKENDS": {"default": embedding_backend_settings(provider)}
        }
    ):
        backend = ai.get_embedding_backend()
        chunks = chunk_text(
            backend,
            important=[],
            body=[("Body", "antidisestablishmentarianism " * 40)],
            max_tokens=50,
            overlap=0,
        )
    assert all(backend.count_tokens(c.text) <= 52 for c in chunks)
    assert len(chunks) > 1


def test_search_ranks_by_meaning(articles):
    ArticlePage.vector_index.update()

    results = ArticlePage.vector_index.search("tomatoes in my garden", limit=2)

    assert [page.title for page in results] == ["Growing tomatoes", "Pruning roses"]
    assert all(isinstance(page, ArticlePage) for page in results)


def test_search_matches_a_brute_force_cosine_ranking(articles):
    index = ArticlePage.vector_index
    index.update()
    query = "stars and planets seen with a telescope at night"

    found = index.search_results(query, limit=5)

    (query_vector,) = index.embedding_backend.embed([query])
    best = {}
    for object_id, vector in stored_vectors(index):
        score = float(np.dot(vector, query_vector) / np.linalg.norm(vector))
        best[object_id] = max(score, best.get(object_id, -1))
    # Same objects (those at or above the default threshold of 0), each with
    # its brute-force score, in descending order (objects with equal scores
    # may come in either order).
    best = {key: score for key, score in best.items() if score >= 0}
    assert {str(r.object.pk) for r in found} == set(best)
    assert [r.score for r in found] == pytest.approx(
        [best[str(r.object.pk)] for r in found], abs=1e-5
    )
    assert [r.score for r in found] == pytest.approx(
        sorted(best.values(), reverse=True), abs=1e-5
    )
    assert found[0].object.title == "Watching stars"


def test_similarity_threshold(articles):
    ArticlePage.vector_index.update()
    results = ArticlePage.vector_index.search(
        "telescope galaxies", limit=5, similarity_threshold=0.2
    )
    assert [page.title for page in results] == ["Watching stars"]


def test_find_similar(articles):
    ArticlePage.vector_index.update()
    tomatoes = articles["Growing tomatoes"]

    similar = ArticlePage.vector_index.find_similar(tomatoes, limit=1)
    with_self = ArticlePage.vector_index.find_similar(
        tomatoes, limit=1, include_self=True
    )

    assert [page.title for page in similar] == ["Pruning roses"]
    assert with_self == [tomatoes]


def test_find_similar_for_an_object_not_in_the_index(articles, home):
    ArticlePage.vector_index.update()
    new = home.add_child(
        instance=ArticlePage(title="Roses", body="<p>Garden roses</p>")
    )

    assert (
        ArticlePage.vector_index.find_similar(new, limit=1, embed_missing=False) == []
    )
    found = ArticlePage.vector_index.find_similar(new, limit=1)
    assert [page.title for page in found] == ["Pruning roses"]


def test_query_answers_with_sources(articles):
    ArticlePage.vector_index.update()

    result = ArticlePage.vector_index.query("How do I bake bread?", sources_limit=2)

    assert result.sources[0].title == "Baking bread"
    assert len(result.sources) == 2
    assert "How do I bake bread?" in result.answer  # The echo backend quotes it.
    assert "best matching source says: Title: Baking bread" in result.answer


def test_query_streaming(articles):
    ArticlePage.vector_index.update()
    result = ArticlePage.vector_index.query("bread", stream=True, sources_limit=1)
    assert "bread" in "".join(part["content"] for part in result.stream)
    assert [page.title for page in result.sources] == ["Baking bread"]


@pytest.mark.django_db(transaction=True)
async def test_async_query(articles):
    from asgiref.sync import sync_to_async
    from django.db import connections

    try:
        await sync_to_async(ArticlePage.vector_index.update)()
        index = ArticlePage.vector_index
        result = await index.aquery("bread oven yeast", sources_limit=1)
        assert [page.title for page in result.sources] == ["Baking bread"]
        assert "bread" in result.answer

        streamed = await index.aquery("bread oven yeast", sources_limit=1, stream=True)
        parts = [part["content"] async for part in streamed.stream]
        assert len(parts) > 1 and "bread" in "".join(parts)
        assert [page.title for page in streamed.sources] == ["Baking bread"]
    finally:
        # The ORM ran in asgiref's thread: close its connection there, or
        # PostgreSQL cannot drop the test database at the end.
        await sync_to_async(connections.close_all)()


def test_only_live_public_pages_are_found(home, articles):
    draft = home.add_child(
        instance=ArticlePage(
            title="Secret tomatoes", body="<p>Tomatoes tomatoes</p>", live=False
        )
    )
    private = home.add_child(
        instance=ArticlePage(title="Private tomatoes", body="<p>Tomatoes garden</p>")
    )
    PageViewRestriction.objects.create(page=private, restriction_type="login")
    live = articles["Growing tomatoes"]
    # A draft of a live page: the new text is in a revision only.
    live.body = "<p>Aubergines instead of tomatoes</p>"
    live.save_revision()

    ArticlePage.vector_index.update()
    titles = [p.title for p in ArticlePage.vector_index.search("tomatoes", limit=10)]

    assert "Secret tomatoes" not in titles
    assert "Private tomatoes" not in titles
    assert not chunk_model().objects.filter(
        object_id__in=[str(draft.pk), str(private.pk)]
    )
    assert not chunk_model().objects.filter(text__contains="Aubergines").exists()
    assert "Growing tomatoes" in titles


def test_page_made_private_or_unpublished_after_indexing_disappears(articles):
    ArticlePage.vector_index.update()
    tomatoes, roses = articles["Growing tomatoes"], articles["Pruning roses"]
    PageViewRestriction.objects.create(page=tomatoes, restriction_type="login")
    roses.unpublish()

    titles = [p.title for p in ArticlePage.vector_index.search("garden", limit=10)]
    similar = ArticlePage.vector_index.find_similar(articles["Baking bread"], limit=10)
    answer = ArticlePage.vector_index.query("garden", sources_limit=5)

    assert "Growing tomatoes" not in titles and "Pruning roses" not in titles
    assert tomatoes not in similar and roses not in similar
    assert tomatoes not in answer.sources and roses not in answer.sources


def test_plain_django_models_are_indexed_in_chunks():
    Book.objects.create(title="Night sky", blurb=" ".join(["stars planets"] * 30))
    Book.objects.create(title="Kitchen", blurb="bread oven flour")

    report = Book.vector_index.update()

    assert report.objects == 2
    assert report.chunks > 2  # max_chunk_tokens=24 splits the long blurb.
    assert all(
        chunk.text.startswith("Title: ")
        for chunk in chunk_model().objects.filter(index_name="testapp.book")
    )
    assert [b.title for b in Book.vector_index.search("oven bread", limit=1)] == [
        "Kitchen"
    ]


def test_second_update_reuses_everything(articles):
    index = ArticlePage.vector_index
    first = index.update()
    second = index.update()

    assert first.embedded == first.chunks == len(ARTICLES)
    assert second.embedded == 0
    assert second.unchanged
    state = IndexState.objects.get(index_name=index.name)
    assert state.chunk_count == len(ARTICLES)
    assert state.model_id == "hashing" and state.dimensions == 512


def test_changed_content_embeds_only_what_changed(articles):
    index = ArticlePage.vector_index
    index.update()
    bread = articles["Baking bread"]
    bread.body = "<p>Sourdough needs a starter, flour and patience.</p>"
    bread.save_revision().publish()

    report = index.update()

    assert report.embedded == 1
    assert report.reused == len(ARTICLES) - 1
    assert [p.title for p in index.search("sourdough starter", limit=1)] == [
        "Baking bread"
    ]


def test_changing_the_embedding_model_asks_for_a_rebuild(articles):
    ArticlePage.vector_index.update()
    other = {
        **OFFLINE,
        "EMBEDDING_BACKENDS": {
            "default": {
                "CLASS": f"{ECHO}.HashingEmbeddingBackend",
                "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": 128},
            }
        },
    }
    with override_settings(WAGTAIL_VECTOR_INDEX=other):
        with pytest.raises(IndexNeedsRebuildError, match="update_vector_indexes"):
            ArticlePage.vector_index.search("garden")
        report = ArticlePage.vector_index.update()  # Rebuilds from scratch.
        assert report.embedded == len(ARTICLES)
        assert ArticlePage.vector_index.search("garden", limit=1)


def test_an_interrupted_update_leaves_the_old_index_answering(articles, monkeypatch):
    index = ArticlePage.vector_index
    index.update()
    bread = articles["Baking bread"]
    bread.body = "<p>Completely new text about sourdough.</p>"
    bread.save_revision().publish()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(index.storage), "activate", fail)
    with pytest.raises(KeyboardInterrupt):
        index.update(rebuild=True)  # A complete new build, never activated.
    monkeypatch.undo()

    assert [p.title for p in index.search("flour yeast oven", limit=1)] == [
        "Baking bread"
    ]
    assert index.update().embedded == 1  # The re-run embeds only what changed.
    assert [p.title for p in index.search("sourdough", limit=1)] == ["Baking bread"]


def test_update_object_and_remove_object(articles, home):
    index = ArticlePage.vector_index
    index.update()
    new = home.add_child(
        instance=ArticlePage(title="Comets", body="<p>A comet tail</p>")
    )
    index.update_object(new)
    assert index.search("comet tail", limit=1) == [new]

    new.unpublish()
    index.update_object(new)  # No longer indexable: removed.
    assert new not in index.search("comet tail", limit=5)
    assert not chunk_model().objects.filter(object_id=str(new.pk)).exists()


def test_embedding_field_strips_html():
    page = ArticlePage(title="T", body="<p>Hello <b>bold</b> world</p>")
    assert EmbeddingField("body").get_text(page) == "Hello bold world"
    assert EmbeddingField("title").get_label(page) == "Title"


def test_page_backends_use_the_pages_site(articles):
    from wagtail.models import Site

    from wagtail_vector_index.models import AISettings

    page = articles["Baking bread"]
    site = Site.objects.create(hostname="bread.example", root_page=page.get_parent())
    settings = AISettings.for_site(site)
    settings.set_overrides("chat", "*", {"temperature": 1.7})
    settings.save()

    backend = page.get_chat_backend()

    assert page.get_site() == site
    assert backend.config.default_parameters["temperature"] == 1.7
    assert (
        "temperature=1.7"
        in backend.chat(messages=[{"role": "user", "content": "x"}]).text
    )


def test_update_command(articles, capsys):
    call_command("update_vector_indexes", "--noinput")
    out = capsys.readouterr().out
    assert "testapp.articlepage" in out
    assert f"{len(ARTICLES)} chunks to embed" in out
    call_command("update_vector_indexes", "--noinput")
    assert "unchanged" in capsys.readouterr().out


@pytest.fixture
def http_embeddings(provider):
    settings = {
        **OFFLINE,
        "EMBEDDING_BACKENDS": {
            "default": embedding_backend_settings(
                provider, EMBEDDING_OUTPUT_DIMENSIONS=16
            )
        },
    }
    provider.state.dimensions = 16
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        yield provider


def test_update_over_http_then_no_provider_call_when_unchanged(
    articles, http_embeddings
):
    ArticlePage.vector_index.update()
    first = len(http_embeddings.requests_to("/v1/embeddings"))
    ArticlePage.vector_index.update()

    assert first == 1  # Five chunks, one batch.
    assert len(http_embeddings.requests_to("/v1/embeddings")) == first


def test_update_command_provider_failure(articles, http_embeddings):
    from django.core.management.base import CommandError

    http_embeddings.fail("401", times=3)
    with pytest.raises(CommandError, match="rejected the credentials") as caught:
        call_command("update_vector_indexes", "testapp.articlepage", "--noinput")
    assert "keeps answering" in str(caught.value)
    assert "sk-" not in str(caught.value)
    assert not IndexState.objects.exists()


class Terminal(io.StringIO):
    """Standard input from someone at a terminal, answering ``text``."""

    def isatty(self):
        return True


def test_update_command_asks_before_spending(articles, http_embeddings, capsys):
    # openai/test-embed has no known price: the cost is unknown, so it asks.
    call_command("update_vector_indexes", "testapp.articlepage", stdin=Terminal("n\n"))
    out = capsys.readouterr().out
    assert "Embed now? [y/N]" in out and "Not updated" in out
    assert not chunk_model().objects.exists()

    call_command("update_vector_indexes", "testapp.articlepage", stdin=Terminal(""))
    assert "Not updated" in capsys.readouterr().out  # End of input: no.

    call_command("update_vector_indexes", "testapp.articlepage", stdin=Terminal("y\n"))
    assert "Done: 5 chunks embedded" in capsys.readouterr().out


def test_update_command_without_a_terminal_never_asks(articles, http_embeddings):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError) as caught:
        call_command(
            "update_vector_indexes", "testapp.articlepage", stdin=io.StringIO("y\n")
        )
    assert str(caught.value) == (
        "Not updating testapp.articlepage: it would ask before spending, but "
        "standard input is not a terminal. Pass --noinput to embed without asking "
        "(in cron jobs and deployments), or --dry-run to see the estimate only."
    )
    assert not chunk_model().objects.exists()
    assert http_embeddings.requests_to("/v1/embeddings") == []

    call_command(
        "update_vector_indexes",
        "testapp.articlepage",
        "--noinput",
        stdin=io.StringIO(""),
    )
    assert chunk_model().objects.exists()


def test_update_command_never_asks_for_nothing(articles, capsys):
    """The offline backend costs $0: nothing to ask, terminal or not."""

    class Unreadable(Terminal):
        def readline(self, *args):
            raise AssertionError("asked for an estimated cost of $0")

    for stdin in (Unreadable(), io.StringIO("")):
        call_command("update_vector_indexes", "testapp.articlepage", stdin=stdin)
    out = capsys.readouterr().out
    assert "about $0.0000" in out and "Embed now?" not in out
    assert "Done: 5 chunks embedded" in out


def test_update_command_dry_run_and_unknown_index(articles, capsys):
    from django.core.management.base import CommandError

    call_command("update_vector_indexes", "--dry-run")
    assert "Dry run" in capsys.readouterr().out
    assert not chunk_model().objects.exists()
    with pytest.raises(CommandError, match="Unknown index: nope"):
        call_command("update_vector_indexes", "nope")


def test_custom_index_across_models(articles, capsys):
    from wagtail_vector_index.index import get_index, get_indexes

    assert set(get_indexes()) == {"testapp.articlepage", "testapp.book", "everything"}
    Book.objects.create(title="Bread book", blurb="Recipes for bread, yeast and flour")

    call_command("update_vector_indexes", "everything", "--noinput")
    index = get_index("everything")
    found = index.search("bread yeast flour", limit=2)

    assert "Index everything" in capsys.readouterr().out
    assert {type(obj) for obj in found} == {Book, ArticlePage}
    assert index.covers(Book) and not index.covers(Page)
