"""Keyword and hybrid search: the site's Wagtail search backend, fused with the
vector ranking by reciprocal rank fusion.

The embedding backend here (``CodeBlindEmbeddingBackend``) never sees words
holding a digit, as semantic models barely see product codes: only the
keyword ranking can find a page by its code.
"""

import logging

import pytest
from django.test import override_settings
from wagtail.models import Page

from tests.testapp.models import ArticlePage, Book
from tests.utils import OFFLINE, root_page
from wagtail_vector_index.checks import check_index_search
from wagtail_vector_index.index import VectorIndex, hybrid
from wagtail_vector_index.index.registry import _custom

pytestmark = pytest.mark.django_db

SETTINGS = {
    **OFFLINE,
    "EMBEDDING_BACKENDS": {
        "default": {
            "CLASS": "tests.testapp.backends.CodeBlindEmbeddingBackend",
            "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": 512},
        }
    },
}


class Catalogue(VectorIndex):
    name = "hybrid-catalogue"

    def get_querysets(self):
        return [ArticlePage.objects.descendant_of(Page.objects.get(slug="catalogue"))]


@pytest.fixture(autouse=True)
def offline():
    with override_settings(WAGTAIL_VECTOR_INDEX=SETTINGS):
        yield


@pytest.fixture
def catalogue():
    home = root_page().add_child(instance=Page(title="Catalogue", slug="catalogue"))

    def add(title, body):
        return home.add_child(instance=ArticlePage(title=title, body=f"<p>{body}</p>"))

    pages = {
        "care": add("Care", "Clean the motor and check the motor brushes."),
        "noise": add("Noise", "A noisy motor: check the motor bearings."),
        "power": add("Power", "More power from the motor means a hotter motor."),
        "sheet": add("XJ-9000 product sheet", "XJ-9000: a 600 watt motor, two speeds."),
    }
    index = Catalogue()
    index.update()
    return index, pages


QUERY = "XJ-9000 motor"


def test_the_vector_ranking_misses_the_exact_term(catalogue):
    index, pages = catalogue
    ranked = index.search(QUERY, limit=4, similarity_threshold=-1, mode="vector")
    assert ranked[-1] == pages["sheet"]  # Blind to the code: last.
    assert pages["sheet"] not in index.search(QUERY, limit=2, mode="vector")


def test_keyword_search_finds_it_first_without_embedding(catalogue, monkeypatch):
    index, pages = catalogue

    def refuse(*args, **kwargs):
        raise AssertionError("a keyword search must not call the embedding backend")

    monkeypatch.setattr(type(index.embedding_backend), "embed_matrix", refuse)
    results = index.search_results(QUERY, limit=4, mode="keyword")

    assert results[0].object == pages["sheet"]
    assert "product sheet" in results[0].text  # Its first stored chunk.
    assert {r.object for r in results} <= set(pages.values())


def test_hybrid_finds_it_and_fuses_as_computed_by_hand(catalogue):
    index, pages = catalogue

    found = index.search_results(QUERY, limit=2, mode="hybrid")

    assert pages["sheet"] in [result.object for result in found]
    # The same fusion, by hand, from the two rankings the index sees.
    vector = [
        r.key
        for r in index.search_results(
            QUERY, limit=4, similarity_threshold=0.0, mode="vector"
        )
    ]
    keyword = hybrid.keyword_ranking(index, QUERY, _everything(), 16)
    scores = {}
    for ranking in (vector, keyword):
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0) + 1 / (60 + rank)
    expected = sorted(scores, key=lambda key: -scores[key])[:2]
    assert [result.key for result in found] == expected
    assert [round(r.score, 12) for r in found] == [
        round(scores[key], 12) for key in expected
    ]


def test_fuse_against_hand_computed_scores():
    a, b, c, d = (1, "a"), (1, "b"), (1, "c"), (1, "d")
    fused = hybrid.fuse([[a, b, c], [c, d]], weights=(1.0, 2.0), k=10)
    assert fused == [
        (c, pytest.approx(1 / 13 + 2 / 11)),
        (d, pytest.approx(2 / 12)),
        (a, pytest.approx(1 / 11)),
        (b, pytest.approx(1 / 12)),
    ]


def test_ties_keep_the_order_first_seen():
    a, b = (1, "a"), (1, "b")
    assert [key for key, _ in hybrid.fuse([[a], [b]], (1.0, 1.0), 60)] == [a, b]


def test_keyword_and_hybrid_respect_the_filter(catalogue):
    index, pages = catalogue
    others = ArticlePage.objects.exclude(pk=pages["sheet"].pk)

    for mode in ("keyword", "hybrid"):
        found = index.search(QUERY, limit=4, mode=mode, filter=others)
        assert pages["sheet"] not in found
        assert found


def test_query_retrieves_in_the_mode_asked(catalogue):
    index, pages = catalogue
    response = index.query(QUERY, sources_limit=1, mode="keyword")
    assert response.sources == [pages["sheet"]]


def test_an_unknown_mode_is_refused(catalogue):
    index, _ = catalogue
    with pytest.raises(ValueError, match="mode must be one of"):
        index.search(QUERY, mode="semantic")


def test_models_without_search_fields_fall_back_to_vector_with_a_warning(caplog):
    Book.objects.create(title="XJ-9000 manual", blurb="How to use the blender.")
    Book.objects.create(title="Blender recipes", blurb="Soups and smoothies.")
    index = Book.vector_index
    index.update()

    with caplog.at_level(logging.WARNING):
        hybrid_found = index.search("blender", limit=2, mode="hybrid")
        keyword_found = index.search("blender", limit=2, mode="keyword")
    assert hybrid_found == keyword_found == index.search("blender", limit=2)
    assert "none of its models has search_fields" in caplog.text


# -- checks --------------------------------------------------------------------


class HybridBooks(VectorIndex):
    name = "hybrid-books"
    search_mode = "hybrid"

    def get_querysets(self):
        return [Book.objects.all()]


class Broken(VectorIndex):
    name = "broken-search"
    search_mode = "semantic"
    hybrid_weights = (1.0,)
    rrf_k = 0

    def get_querysets(self):
        return [ArticlePage.objects.all()]


@pytest.fixture
def registered():
    added = []

    def register(index):
        _custom[index.name] = index
        added.append(index.name)

    yield register
    for name in added:
        _custom.pop(name, None)


def test_check_warns_of_hybrid_over_a_model_without_search_fields(registered):
    registered(HybridBooks())
    messages = [m for m in check_index_search() if "hybrid-books" in m.msg]
    assert [m.id for m in messages] == ["wagtail_vector_index.W012"]
    assert "testapp.Book has no search_fields" in messages[0].msg


def test_check_refuses_unusable_search_settings(registered):
    registered(Broken())
    messages = [m for m in check_index_search() if "broken-search" in m.msg]
    assert [m.id for m in messages] == ["wagtail_vector_index.E029"] * 3
    assert all(m.hint for m in messages)


def test_the_default_indexes_pass_the_check():
    assert check_index_search() == []


def _everything():
    from wagtail_vector_index.index.scope import EVERYTHING

    return EVERYTHING
