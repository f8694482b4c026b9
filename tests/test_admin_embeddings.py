"""The embeddings test page: embedding, similarity, ranking, limits and
provider errors."""

import pytest
from django.urls import reverse

from tests.utils import (
    EMBEDDINGS_URL,
    PLAIN_KEY,
    TEST_API_KEY,
    logged_in,
)

pytestmark = pytest.mark.django_db

# -- the embeddings page ----------------------------------------------------------


def test_embeddings_page_renders(backends, editor):
    response = logged_in(editor).get(reverse(EMBEDDINGS_URL))
    assert response.status_code == 200
    html = response.content.decode()
    assert "default: openai/test-embed" in html
    assert "offline: hashing (offline)" in html


def test_embeddings_against_the_provider(backends, editor):
    texts = ["Tomatoes in the garden", "Bread in the oven", "<script>alert(1)</script>"]
    response = logged_in(editor).post(
        reverse(EMBEDDINGS_URL),
        {"alias": "default", "texts": "\n".join(texts), "query": "garden"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    result = response.context["result"]
    assert result.dimensions == 8
    assert result.texts == texts
    (request,) = backends.requests_to("/v1/embeddings")
    assert request.body["input"] == [*texts, "garden"]
    # A grid of similarities: one cell per pair, 1 on the diagonal.
    assert len(result.matrix) == 3 and all(len(row) == 3 for row in result.matrix)
    assert [result.matrix[i][i].value for i in range(3)] == pytest.approx([1, 1, 1])
    assert result.matrix[0][1].value == pytest.approx(result.matrix[1][0].value)
    assert html.count("wvi-similarity__cell") == 9
    assert "wvi-similarity--10" in html
    assert "Similarity between the texts" in html
    # Ranked against the query, best first.
    scores = [item.score for item in result.ranking]
    assert scores == sorted(scores, reverse=True)
    assert {item.text for item in result.ranking} == set(texts)
    assert "Texts ranked by similarity to the query" in html
    # Texts are escaped wherever they are shown.
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "openai/test-embed" in html


def test_offline_embeddings_rank_the_text_sharing_words_first(backends, editor):
    texts = [
        "A telescope shows planets and stars at night",
        "Bread needs flour, yeast and a hot oven",
        "Tomatoes grow in the garden with sun and water",
    ]
    response = logged_in(editor).post(
        reverse(EMBEDDINGS_URL),
        {
            "alias": "offline",
            "texts": "\n".join(texts),
            "query": "growing tomatoes in my garden",
        },
    )
    result = response.context["result"]
    assert result.ranking[0].text == texts[2]
    assert result.ranking[0].number == 3
    assert result.tokens is None  # No tokenizer: the page shows the inputs.
    html = response.content.decode()
    assert "Inputs" in html and "Offline" in html
    assert not backends.requests


def test_embeddings_input_limits(backends, editor):
    client = logged_in(editor)
    too_many = "\n".join(f"text {i}" for i in range(51))
    response = client.post(
        reverse(EMBEDDINGS_URL), {"alias": "default", "texts": too_many}
    )
    assert "at most 50 texts" in response.content.decode()
    response = client.post(
        reverse(EMBEDDINGS_URL), {"alias": "default", "texts": "x" * 20_001}
    )
    assert response.context["form"].errors["texts"]
    response = client.post(
        reverse(EMBEDDINGS_URL), {"alias": "default", "texts": "\n \n"}
    )
    assert response.context["form"].errors["texts"]
    assert not backends.requests


def test_embeddings_provider_error_keeps_the_form(backends, editor):
    backends.fail("401", times=3)
    response = logged_in(editor).post(
        reverse(EMBEDDINGS_URL),
        {"alias": "default", "texts": "one\ntwo", "query": "three"},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "rejected the credentials" in html
    assert "help-critical" in html
    assert TEST_API_KEY not in html and "Traceback" not in html
    assert response.context["form"]["texts"].value() == "one\ntwo"
    assert "result" not in response.context


@pytest.mark.parametrize("failure", ["echo-404", "emb-nan", "emb-short"])
def test_embeddings_page_hides_quoted_keys_and_bad_vectors(
    backends, editor, monkeypatch, failure
):
    monkeypatch.setenv("OPENAI_API_KEY", PLAIN_KEY)
    backends.fail(failure, times=3)
    response = logged_in(editor).post(
        reverse(EMBEDDINGS_URL),
        {"alias": "default", "texts": "one\ntwo", "query": "three"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "help-critical" in html
    assert PLAIN_KEY not in html and "Error code" not in html
    assert "result" not in response.context
