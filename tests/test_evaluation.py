"""manage.py evaluate_vector_index: the metrics against hand-computed values,
the questions file, the modes side by side, another embedding alias."""

import json
import math

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from wagtail.models import Page, Site

from tests.testapp.models import ArticlePage
from tests.utils import ARTICLES, HASHING_EMBEDDING, OFFLINE, root_page
from wagtail_vector_index.index import evaluation
from wagtail_vector_index.models import IndexState

A, B, C, D = (1, "a"), (1, "b"), (1, "c"), (1, "d")


def test_metrics_against_hand_computed_values():
    ranked, relevant = [A, B, C], {B, D}
    assert evaluation.recall_at_k(ranked, relevant, 3) == 0.5
    assert evaluation.reciprocal_rank(ranked, relevant, 3) == 0.5
    # DCG: B at rank 2 -> 1/log2(3); ideal: ranks 1 and 2 -> 1 + 1/log2(3).
    ideal = 1 + 1 / math.log2(3)
    assert evaluation.ndcg_at_k(ranked, relevant, 3) == pytest.approx(
        (1 / math.log2(3)) / ideal
    )
    # Cut at k=1: nothing relevant in the top 1.
    assert evaluation.recall_at_k(ranked, relevant, 1) == 0
    assert evaluation.reciprocal_rank(ranked, relevant, 1) == 0
    assert evaluation.ndcg_at_k(ranked, relevant, 1) == 0
    # A perfect ranking.
    assert evaluation.ndcg_at_k([B, D, A], relevant, 3) == pytest.approx(1.0)
    assert evaluation.ndcg_at_k([D], {D}, 5) == 1.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "line 1: not JSON"),
        ('["a list"]\n', "line 1: not a JSON object"),
        ('\n# a comment\n{"expected": [1]}\n', 'line 3: no "question" text'),
        ('{"question": "Why?", "expected": []}\n', '"expected" must list'),
        ("\n\n", "no questions"),
    ],
)
def test_a_malformed_questions_file_says_where(tmp_path, content, message):
    path = tmp_path / "questions.jsonl"
    path.write_text(content)
    with pytest.raises(evaluation.QuestionsFileError, match=message):
        evaluation.read_questions(path)


# -- the command -----------------------------------------------------------------


@pytest.fixture
def articles(db):
    settings = {
        **OFFLINE,
        "EMBEDDING_BACKENDS": {
            **OFFLINE["EMBEDDING_BACKENDS"],
            "small": {
                "CLASS": HASHING_EMBEDDING,
                "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": 64},
            },
        },
    }
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        home = root_page().add_child(instance=Page(title="Home", slug="eval-home"))
        # A site whose root is home, so that pages have URLs.
        Site.objects.all().delete()
        Site.objects.create(
            hostname="eval.example", root_page=home, is_default_site=True
        )
        pages = {}
        for title, body in ARTICLES.items():
            slug = title.lower().replace(" ", "-")
            pages[slug] = home.add_child(
                instance=ArticlePage(title=title, slug=slug, body=f"<p>{body}</p>")
            )
        ArticlePage.vector_index.update()
        yield pages


def write(tmp_path, *lines):
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return str(path)


def run(*args):
    from io import StringIO

    out = StringIO()
    call_command("evaluate_vector_index", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_figures_per_mode_match_the_searches(articles, tmp_path):
    index = ArticlePage.vector_index
    questions = [
        ("What do tomatoes need?", ["growing-tomatoes"]),
        ("telescope planets galaxies", [articles["watching-stars"].pk]),
        ("Keep a cyclist dry", [articles["cycling-in-rain"].full_url, "baking-bread"]),
    ]
    path = write(tmp_path, *({"question": q, "expected": e} for q, e in questions))

    report = json.loads(
        run("testapp.articlepage", "--questions", path, "-k", "2", "--json")
    )

    (block,) = report
    assert block["questions"] == 3 and block["k"] == 2
    assert [m["mode"] for m in block["modes"]] == ["vector", "keyword", "hybrid"]
    relevant = [
        {(articles[slug].content_type_id, str(articles[slug].pk))}
        for slug in ("growing-tomatoes", "watching-stars")
    ] + [
        {
            (articles[slug].content_type_id, str(articles[slug].pk))
            for slug in ("cycling-in-rain", "baking-bread")
        }
    ]
    for figures in block["modes"]:
        ranked = [
            [
                r.key
                for r in index.search_results(
                    q, limit=2, similarity_threshold=-1, mode=figures["mode"]
                )
            ]
            for q, _ in questions
        ]
        recalls = [
            evaluation.recall_at_k(r, g, 2)
            for r, g in zip(ranked, relevant, strict=True)
        ]
        assert figures["recall"] == pytest.approx(sum(recalls) / 3)
        ranks = [
            evaluation.reciprocal_rank(r, g, 2)
            for r, g in zip(ranked, relevant, strict=True)
        ]
        assert figures["mrr"] == pytest.approx(sum(ranks) / 3)
        assert figures["latency_ms"] >= 0
    # The first two questions are found first by the vector ranking.
    vector = block["modes"][0]
    assert vector["mrr"] >= 2 / 3


def test_the_table_and_one_mode(articles, tmp_path):
    path = write(tmp_path, {"question": "tomatoes", "expected": ["growing-tomatoes"]})
    text = run("testapp.articlepage", "--questions", path, "--modes", "keyword")
    assert "| mode | recall@5 | MRR | nDCG@5 | median latency ms |" in text
    assert "| keyword | 1.000 | 1.000 | 1.000 |" in text
    assert "vector |" not in text


def test_compare_another_embedding_alias_on_a_temporary_index(articles, tmp_path):
    path = write(tmp_path, {"question": "tomatoes", "expected": ["growing-tomatoes"]})

    report = json.loads(
        run(
            "testapp.articlepage",
            "--questions",
            path,
            "--compare-alias",
            "small",
            "--modes",
            "vector",
            "--json",
        )
    )

    assert [(b["index"], b["embedding_alias"]) for b in report] == [
        ("testapp.articlepage", "default"),
        ("testapp.articlepage@small", "small"),
    ]
    assert report[1]["modes"][0]["recall"] == 1.0
    # The temporary index is gone; the real one untouched.
    assert not IndexState.objects.filter(
        index_name="testapp.articlepage@small"
    ).exists()
    assert IndexState.objects.get(index_name="testapp.articlepage").dimensions == 512


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no.such.index"], 'No vector index named "no.such.index"'),
        (["testapp.articlepage", "--modes", "semantic"], "Unknown mode 'semantic'"),
        (["testapp.articlepage", "-k", "0"], "-k must be 1 or more"),
    ],
)
def test_bad_arguments(articles, tmp_path, args, message):
    path = write(tmp_path, {"question": "tomatoes", "expected": ["growing-tomatoes"]})
    with pytest.raises(CommandError, match=message):
        run(*args, "--questions", path)


def test_an_expected_page_that_does_not_exist(articles, tmp_path):
    path = write(tmp_path, {"question": "tomatoes", "expected": ["no-such-slug"]})
    with pytest.raises(CommandError, match="line 1: 'no-such-slug' names no object"):
        run("testapp.articlepage", "--questions", path)


def test_an_index_never_built(db, tmp_path):
    home = root_page().add_child(instance=Page(title="Home", slug="eval-empty"))
    home.add_child(instance=ArticlePage(title="Tomatoes", slug="tomatoes"))
    path = write(tmp_path, {"question": "tomatoes", "expected": ["tomatoes"]})
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        with pytest.raises(CommandError, match="is not built"):
            run("testapp.articlepage", "--questions", path)
