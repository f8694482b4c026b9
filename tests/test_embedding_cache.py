"""The embedding cache: the same text embedded with the same model and
dimensions is sent to the provider once, whichever index or caller asks.

Provider calls are counted by the loopback provider (``tests/providers.py``).
The index tests here run against the storage of the settings in use
(tests/settings_postgres.py runs them on pgvector).
"""

import datetime
import hashlib

import numpy as np
import pytest
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from wagtail.models import Page

from tests.providers import fake_array
from tests.testapp.models import ArticlePage
from tests.utils import (
    ARTICLES,
    HASHING_EMBEDDING,
    OFFLINE,
    embedding_backend_settings,
    root_page,
    run_async,
)
from wagtail_vector_index import ai, embedding_cache
from wagtail_vector_index.checks import check_settings
from wagtail_vector_index.index import VectorIndex
from wagtail_vector_index.models import AIUsageRecord, EmbeddingCacheEntry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_ledger")]

DIMENSIONS = 16
MODEL = "openai/test-embed"


def http_settings(provider, **cache):
    """The index tests' settings (storage included) with embeddings over HTTP."""
    settings = {
        **OFFLINE,
        "EMBEDDING_BACKENDS": {
            "default": embedding_backend_settings(
                provider, EMBEDDING_OUTPUT_DIMENSIONS=DIMENSIONS
            ),
            "offline": {"CLASS": HASHING_EMBEDDING, "CONFIG": {}},
        },
    }
    if cache:
        settings["EMBEDDING_CACHE"] = cache
    return settings


@pytest.fixture
def http(provider):
    provider.state.dimensions = DIMENSIONS
    with override_settings(WAGTAIL_VECTOR_INDEX=http_settings(provider)):
        yield provider


def calls(provider):
    return provider.requests_to("/v1/embeddings")


def sent(provider):
    """The texts of every embedding request, one list per request."""
    return [request.json["input"] for request in calls(provider)]


def expected(*texts):
    return np.vstack([fake_array(text, DIMENSIONS) for text in texts])


def digest(text):
    return embedding_cache.content_hash(text)


def vector(seed, dimensions=DIMENSIONS):
    return np.random.default_rng(seed).random(dimensions, dtype=np.float32)


# -- the cache itself ------------------------------------------------------------


def test_store_and_lookup_round_trip():
    vectors = {digest("a"): vector(1), digest("b"): vector(2)}

    assert embedding_cache.store(MODEL, DIMENSIONS, vectors) == 2
    found = embedding_cache.lookup(MODEL, DIMENSIONS, [digest("b"), digest("c")])

    assert list(found) == [digest("b")]
    assert found[digest("b")].dtype == np.float32
    np.testing.assert_array_equal(found[digest("b")], vectors[digest("b")])
    entry = EmbeddingCacheEntry.objects.get(content_hash=digest("a"))
    # Float32, little-endian, as documented.
    assert bytes(entry.vector) == vectors[digest("a")].astype("<f4").tobytes()


def test_the_content_hash_is_the_chunks_hash():
    from wagtail_vector_index.index.chunking import Chunk

    text = "Tomatoes need sun"
    assert Chunk(0, text).content_hash == digest(text)
    assert digest(text) == hashlib.sha256(text.encode()).hexdigest()


def test_other_models_and_dimensions_never_share_entries():
    key = digest("shared text")
    embedding_cache.store(MODEL, DIMENSIONS, {key: vector(1)})

    assert embedding_cache.lookup("openai/other", DIMENSIONS, [key]) == {}
    assert embedding_cache.lookup(MODEL, 8, [key]) == {}

    # The same text under another model or dimensions is an entry of its own.
    embedding_cache.store("openai/other", DIMENSIONS, {key: vector(2)})
    embedding_cache.store(MODEL, 8, {key: vector(3, 8)})
    assert EmbeddingCacheEntry.objects.filter(content_hash=key).count() == 3
    np.testing.assert_array_equal(
        embedding_cache.lookup("openai/other", DIMENSIONS, [key])[key], vector(2)
    )
    np.testing.assert_array_equal(
        embedding_cache.lookup(MODEL, DIMENSIONS, [key])[key], vector(1)
    )


@pytest.mark.parametrize(
    "key, value, problem",
    [
        (digest("a"), np.ones(DIMENSIONS + 1, dtype=np.float32), "not 16 numbers"),
        (digest("a"), np.full(DIMENSIONS, np.nan, dtype=np.float32), "NaN"),
        (digest("a"), np.full(DIMENSIONS, 1e39), "NaN or infinite"),
        (digest("a"), ["x"] * DIMENSIONS, "not 16 numbers"),
        ("not-a-hash", np.ones(DIMENSIONS, dtype=np.float32), "SHA-256"),
    ],
)
def test_store_refuses_what_is_not_a_vector_of_the_dimensions(key, value, problem):
    good = {digest("good"): vector(1)}
    with pytest.raises(ValueError, match=problem):
        embedding_cache.store(MODEL, DIMENSIONS, {**good, key: value})
    assert not EmbeddingCacheEntry.objects.exists()  # Not even the good one.


def test_an_existing_entry_is_kept():
    key = digest("a")
    embedding_cache.store(MODEL, DIMENSIONS, {key: vector(1)})
    embedding_cache.store(MODEL, DIMENSIONS, {key: vector(2)})

    assert EmbeddingCacheEntry.objects.count() == 1
    np.testing.assert_array_equal(
        embedding_cache.lookup(MODEL, DIMENSIONS, [key])[key], vector(1)
    )


def test_lookups_are_batched_and_mark_entries_used_once():
    keys = [digest(str(i)) for i in range(1200)]
    embedding_cache.store(MODEL, DIMENSIONS, {k: vector(i) for i, k in enumerate(keys)})
    long_ago = timezone.now() - datetime.timedelta(days=1)
    EmbeddingCacheEntry.objects.update(last_used_at=long_ago)

    with CaptureQueriesContext(connection) as queries:
        found = embedding_cache.lookup(MODEL, DIMENSIONS, keys)
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]

    assert len(found) == 1200
    # 500 hashes a query; one UPDATE per batch marks its entries used.
    assert statements == ["SELECT", "UPDATE"] * 3
    assert not EmbeddingCacheEntry.objects.filter(last_used_at=long_ago).exists()

    with CaptureQueriesContext(connection) as queries:
        embedding_cache.lookup(MODEL, DIMENSIONS, keys)
    # Used a moment ago: nothing written.
    assert [q["sql"].split()[0].upper() for q in queries.captured_queries] == [
        "SELECT"
    ] * 3


def backdate(keys):
    """Give ``keys`` last-used times in this order, oldest first."""
    start = timezone.now() - datetime.timedelta(days=10)
    for hours, key in enumerate(keys):
        EmbeddingCacheEntry.objects.filter(content_hash=key).update(
            last_used_at=start + datetime.timedelta(hours=hours)
        )


def test_the_least_recently_used_entries_are_evicted_first(monkeypatch):
    monkeypatch.setattr(embedding_cache, "_added_since_check", None)
    keys = [digest(f"old {i}") for i in range(5)]
    with override_settings(
        WAGTAIL_VECTOR_INDEX={"EMBEDDING_CACHE": {"MAX_ENTRIES": 5}}
    ):
        embedding_cache.store(MODEL, DIMENSIONS, {k: vector(1) for k in keys})
        backdate(keys)
        # Read: the two oldest become the most recently used.
        embedding_cache.lookup(MODEL, DIMENSIONS, keys[:2])

        new = [digest("new 1"), digest("new 2")]
        embedding_cache.store(MODEL, DIMENSIONS, {k: vector(2) for k in new})

    left = set(EmbeddingCacheEntry.objects.values_list("content_hash", flat=True))
    assert left == {keys[0], keys[1], keys[4], *new}


def test_the_size_is_not_counted_on_every_store(monkeypatch):
    monkeypatch.setattr(embedding_cache, "_added_since_check", None)
    counted = []
    real_evict = embedding_cache.evict
    monkeypatch.setattr(
        embedding_cache, "evict", lambda limit=None: counted.append(limit) or 0
    )
    with override_settings(
        WAGTAIL_VECTOR_INDEX={"EMBEDDING_CACHE": {"MAX_ENTRIES": 10_000}}
    ):
        # A hundredth of MAX_ENTRIES (100) between checks, and at the first store.
        for batch in range(25):
            embedding_cache.store(
                MODEL,
                DIMENSIONS,
                {digest(f"{batch}.{i}"): vector(i) for i in range(10)},
            )
    assert counted == [10_000, 10_000, 10_000]  # After 10, 110 and 210 entries.
    assert real_evict(240) == 10 and EmbeddingCacheEntry.objects.count() == 240


def test_clearing_and_evicting_never_read_the_vectors():
    # With a post_delete receiver for the model, Django would read every row
    # first: a full cache is hundreds of MB (tests/test_fast_delete.py).
    embedding_cache.store(
        MODEL, DIMENSIONS, {digest(str(i)): vector(i) for i in range(30)}
    )
    with CaptureQueriesContext(connection) as queries:
        assert embedding_cache.evict(10) == 20
        assert embedding_cache.clear() == 10
    statements = [q["sql"] for q in queries.captured_queries]
    assert not [sql for sql in statements if '"vector"' in sql]
    assert [sql.split()[0] for sql in statements] == [
        "SELECT",  # COUNT
        "SELECT",  # the 20 least recently used
        "DELETE",
        "DELETE",
    ]


def test_clear_all_or_one_model_with_the_command(capsys):
    embedding_cache.store(MODEL, DIMENSIONS, {digest("a"): vector(1)})
    embedding_cache.store("openai/other", DIMENSIONS, {digest("a"): vector(1)})
    embedding_cache.store("openai/other", DIMENSIONS, {digest("b"): vector(1)})

    call_command("clear_embedding_cache", "--model", "openai/other")
    assert (
        capsys.readouterr().out
        == "Removed 2 embedding cache entries of openai/other.\n"
    )
    assert list(EmbeddingCacheEntry.objects.values_list("model_id", flat=True)) == [
        MODEL
    ]
    call_command("clear_embedding_cache")
    assert capsys.readouterr().out == "Removed 1 embedding cache entries.\n"
    assert not EmbeddingCacheEntry.objects.exists()


# -- backend.with_cache() ------------------------------------------------------------


def test_with_cache_sends_only_the_texts_not_cached(http):
    backend = ai.get_embedding_backend().with_cache()
    first = list(backend.embed(["alpha", "beta"]))

    texts = ["beta", "gamma", "alpha", "gamma", "delta"]
    vectors = backend.embed_matrix(texts)

    # Each missing text once, in input order; results in input order.
    assert sent(http) == [["alpha", "beta"], ["gamma", "delta"]]
    np.testing.assert_array_equal(first, expected("alpha", "beta"))
    assert vectors.dtype == np.float32 and vectors.shape == (5, DIMENSIONS)
    np.testing.assert_array_equal(vectors, expected(*texts))
    # The usage ledger has one record per provider call, of the texts sent.
    records = AIUsageRecord.objects.order_by("pk")
    assert [r.input_count for r in records] == [2, 2]


def test_with_cache_makes_no_call_when_every_text_is_cached(http):
    backend = ai.get_embedding_backend().with_cache()
    backend.embed_matrix(["alpha", "beta"])
    assert len(calls(http)) == 1 and AIUsageRecord.objects.count() == 1

    again = list(backend.embed(["beta", "alpha", "beta"]))

    assert len(calls(http)) == 1
    assert AIUsageRecord.objects.count() == 1  # No call, nothing recorded.
    np.testing.assert_array_equal(again, expected("beta", "alpha", "beta"))
    assert list(backend.embed([])) == []
    assert backend.embed_matrix([]).shape == (0, DIMENSIONS)
    assert len(calls(http)) == 1


def test_async_with_cache_sends_only_the_texts_not_cached(http):
    backend = ai.get_embedding_backend().with_cache()

    async def embed():
        lists = await backend.aembed(["one", "two"])
        matrix = await backend.aembed_matrix(["two", "three", "one", "three"])
        return lists, matrix

    lists, matrix = run_async(embed)

    assert sent(http) == [["one", "two"], ["three"]]
    np.testing.assert_array_equal(lists, expected("one", "two"))
    np.testing.assert_array_equal(matrix, expected("two", "three", "one", "three"))
    assert [r.input_count for r in AIUsageRecord.objects.order_by("pk")] == [2, 1]


def test_without_with_cache_every_text_is_sent(http):
    backend = ai.get_embedding_backend()
    backend.with_cache().embed_matrix(["alpha"])
    backend.embed_matrix(["alpha"])
    list(backend.embed(["alpha"]))

    assert sent(http) == [["alpha"]] * 3
    assert EmbeddingCacheEntry.objects.count() == 1


def test_inputs_from_a_generator(http):
    backend = ai.get_embedding_backend().with_cache()
    backend.embed_matrix(["alpha"])

    vectors = backend.embed_matrix(text for text in ["alpha", "beta"])

    np.testing.assert_array_equal(vectors, expected("alpha", "beta"))
    assert sent(http) == [["alpha"], ["beta"]]


def test_calls_sending_parameters_that_change_the_vectors_are_not_cached(http):
    # Cohere's input_type (Vertex AI's task_type): a query's vector differs
    # from a document's, and the key does not hold the parameter.
    backend = ai.get_embedding_backend().with_cache()
    backend.embed_matrix(["alpha"])
    backend.embed_matrix(["alpha"], input_type="search_query")

    assert sent(http) == [["alpha"], ["alpha"]]
    assert EmbeddingCacheEntry.objects.count() == 1


def test_indexes_whose_backend_sends_such_parameters_are_not_cached(articles, http):
    ArticlesIndex("one").update()
    settings = http_settings(http)
    settings["EMBEDDING_BACKENDS"]["default"]["CONFIG"]["DEFAULT_PARAMETERS"][
        "task_type"
    ] = "RETRIEVAL_DOCUMENT"
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        report = ArticlesIndex("two").update()

    assert [len(texts) for texts in sent(http)] == [len(ARTICLES)] * 2
    assert report.cached == 0


def test_refused_parameters_fail_before_the_cache(http):
    backend = ai.get_embedding_backend().with_cache()
    with pytest.raises(TypeError, match="model cannot be passed"):
        backend.embed_matrix(["alpha"], model="x")
    with pytest.raises(TypeError, match="single string"):
        backend.embed_matrix("alpha")
    assert calls(http) == [] and not EmbeddingCacheEntry.objects.exists()


def test_disabled_sends_every_text(provider):
    provider.state.dimensions = DIMENSIONS
    with override_settings(WAGTAIL_VECTOR_INDEX=http_settings(provider, ENABLED=False)):
        backend = ai.get_embedding_backend().with_cache()
        backend.embed_matrix(["alpha"])
        backend.embed_matrix(["alpha"])

    assert sent(provider) == [["alpha"], ["alpha"]]
    assert not EmbeddingCacheEntry.objects.exists()


def test_offline_backends_are_not_cached(http):
    backend = ai.get_embedding_backend("offline").with_cache()
    vectors = backend.embed_matrix(["alpha"])

    assert vectors.shape == (1, backend.embedding_output_dimensions)
    assert not EmbeddingCacheEntry.objects.exists()


# -- indexes -----------------------------------------------------------------


class ArticlesIndex(VectorIndex):
    """A second index over the article pages, under any name."""

    name = "articles-again"

    def get_querysets(self):
        return [ArticlePage.objects.all()]


@pytest.fixture
def articles():
    home = root_page().add_child(instance=Page(title="Home", slug="cache-home"))
    return {
        title: home.add_child(
            instance=ArticlePage(title=title, body=f"<p>{body}</p>", intro="")
        )
        for title, body in ARTICLES.items()
    }


def assert_holds_the_providers_vectors(index, pages):
    """The index's vectors of ``pages`` are the provider's for their chunks."""
    from django.contrib.contenttypes.models import ContentType

    state = index.storage.state()
    for page in pages:
        page = page.specific
        content_type = ContentType.objects.get_for_model(page).pk
        stored = index.storage.object_vectors(state, content_type, str(page.pk))
        texts = [chunk.text for chunk in index.chunks_for(page)]
        np.testing.assert_allclose(np.vstack(stored), expected(*texts), rtol=1e-6)


def test_a_second_index_over_the_same_pages_makes_no_provider_call(articles, http):
    first = ArticlePage.vector_index.update()
    assert len(calls(http)) == 1  # Five chunks, one batch.
    assert (first.embedded, first.cached) == (len(ARTICLES), 0)

    second = ArticlesIndex()
    estimate = second.estimate()
    assert (estimate.chunks_to_embed, estimate.chunks_cached) == (0, len(ARTICLES))
    assert estimate.tokens_to_embed == 0 and estimate.cost == 0.0
    report = second.update()

    assert len(calls(http)) == 1  # Zero calls for the second index.
    assert (report.embedded, report.cached) == (0, len(ARTICLES))
    assert AIUsageRecord.objects.count() == 1
    assert_holds_the_providers_vectors(second, articles.values())


def test_an_index_rebuilt_under_a_new_name_makes_no_provider_call(articles, http):
    ArticlesIndex("before").update()
    assert len(calls(http)) == 1
    progress = []

    report = ArticlesIndex("after").update(
        progress=lambda done, total: progress.append((done, total))
    )

    assert len(calls(http)) == 1
    assert report.cached == len(ARTICLES) and report.embedded == 0
    assert progress == [(len(ARTICLES), len(ARTICLES))]


def test_only_texts_not_cached_are_sent_by_an_update(articles, http):
    ArticlePage.vector_index.update()
    bread = articles["Baking bread"]
    bread.body = "<p>Sourdough needs a starter, flour and patience.</p>"
    bread.save_revision().publish()

    report = ArticlesIndex().update()

    (request,) = calls(http)[1:]
    assert len(request.json["input"]) == 1
    assert "Sourdough" in request.json["input"][0]
    assert (report.embedded, report.cached) == (1, len(ARTICLES) - 1)
    # ...and the first index finds the changed text in the cache.
    assert ArticlePage.vector_index.update().cached == 1
    assert len(calls(http)) == 2


def test_a_stopped_update_keeps_the_vectors_it_paid_for(articles, http, monkeypatch):
    from wagtail_vector_index.ai_utils.backends.litellm import (
        LiteLLMEmbeddingBackend,
    )
    from wagtail_vector_index.exceptions import AIBudgetExceededError

    index = ArticlesIndex()
    settings = http_settings(http)
    # Room for the first request of two texts (estimated at 10 tokens each),
    # not for the second after what the first spent.
    monkeypatch.setattr(LiteLLMEmbeddingBackend, "count_tokens", lambda self, text: 10)
    settings["USAGE"] = {"NO_SITE_MONTHLY_BUDGET_TOKENS": 25}
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        with pytest.raises(AIBudgetExceededError):
            index.update(batch_size=2)
    assert index.storage.state() is None  # Nothing answers yet.
    (first,) = sent(http)
    assert EmbeddingCacheEntry.objects.count() == 2

    report = index.update(batch_size=2)

    assert (report.embedded, report.cached) == (len(ARTICLES) - 2, 2)
    assert not set(first) & {text for texts in sent(http)[1:] for text in texts}
    assert_holds_the_providers_vectors(index, articles.values())


def test_the_update_command_says_what_comes_from_the_cache(articles, http, capsys):
    ArticlesIndex("elsewhere").update()
    call_command("update_vector_indexes", "testapp.articlepage", "--noinput")

    out = capsys.readouterr().out
    assert f"5 chunks; 0 chunks to embed with {MODEL} (0 tokens," in out
    assert f"; {len(ARTICLES)} chunks from the embedding cache (no provider" in out
    assert f"Done: 0 chunks embedded, {len(ARTICLES)} from the embedding cache" in out
    assert len(calls(http)) == 1


def test_update_object_takes_cached_vectors(articles, http):
    index = ArticlesIndex()
    index.update()
    page = articles["Pruning roses"]
    page.body = "<p>Roses like a sunny spot.</p>"
    page.save_revision().publish()
    ArticlesIndex("other").update()  # Embeds the new text: one call.
    assert len(calls(http)) == 2

    index.update_object(page)

    assert len(calls(http)) == 2
    assert_holds_the_providers_vectors(index, [page])


def test_indexes_with_the_cache_disabled_send_everything(articles, provider):
    provider.state.dimensions = DIMENSIONS
    with override_settings(WAGTAIL_VECTOR_INDEX=http_settings(provider, ENABLED=False)):
        ArticlesIndex("one").update()
        report = ArticlesIndex("two").update()

    assert [len(texts) for texts in sent(provider)] == [len(ARTICLES)] * 2
    assert report.embedded == len(ARTICLES) and report.cached == 0
    assert not EmbeddingCacheEntry.objects.exists()


def test_an_index_with_another_model_does_not_take_these_vectors(articles, http):
    ArticlesIndex("one").update()
    settings = http_settings(http)
    settings["EMBEDDING_BACKENDS"]["default"]["CONFIG"]["MODEL_ID"] = "openai/other"
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        report = ArticlesIndex("two").update()

    assert [len(texts) for texts in sent(http)] == [len(ARTICLES)] * 2
    assert report.cached == 0
    assert set(EmbeddingCacheEntry.objects.values_list("model_id", flat=True)) == {
        MODEL,
        "openai/other",
    }


# -- checks ------------------------------------------------------------------

WHERE = 'WAGTAIL_VECTOR_INDEX["EMBEDDING_CACHE"]'


def checked(cache):
    with override_settings(WAGTAIL_VECTOR_INDEX={"EMBEDDING_CACHE": cache}):
        return check_settings()


def test_valid_cache_settings_pass():
    assert checked({}) == []
    assert checked({"ENABLED": False, "MAX_ENTRIES": 1}) == []


def test_e030_cache_settings_not_a_dict():
    assert checked(True) == [
        Error(
            f"{WHERE} must be a dict, not bool.",
            hint='Set it to a dict such as {"MAX_ENTRIES": 100000}, or remove it '
            "to use the defaults.",
            id="wagtail_vector_index.E030",
        )
    ]


def test_w015_unknown_key():
    assert checked({"MAX_ENTRY": 5}) == [
        Warning(
            f'{WHERE} has an unknown key "MAX_ENTRY".',
            hint='The known keys are "ENABLED", "MAX_ENTRIES"; check the spelling.',
            id="wagtail_vector_index.W015",
        )
    ]


def test_e031_enabled_not_a_bool():
    assert checked({"ENABLED": "no"}) == [
        Error(
            f"{WHERE}[\"ENABLED\"] must be True or False, not 'no'.",
            hint="Set it to False to send every text to the provider, or True "
            "(the default) to use the embedding cache.",
            id="wagtail_vector_index.E031",
        )
    ]


@pytest.mark.parametrize("value", [0, -5, "1000", 2.5, True, None])
def test_e032_max_entries_not_a_positive_whole_number(value):
    assert checked({"MAX_ENTRIES": value}) == [
        Error(
            f'{WHERE}["MAX_ENTRIES"] must be a whole number of entries above 0, '
            f"not {value!r}.",
            hint="Use a number such as 100000 (an entry of 1,536 dimensions takes "
            "about 6 KB), or set ENABLED to False.",
            id="wagtail_vector_index.E032",
        )
    ]


def test_malformed_values_fall_back_to_the_defaults():
    from wagtail_vector_index import conf

    with override_settings(
        WAGTAIL_VECTOR_INDEX={"EMBEDDING_CACHE": {"ENABLED": "no", "MAX_ENTRIES": 0}}
    ):
        assert conf.get_embedding_cache_enabled() is True
        assert conf.get_embedding_cache_max_entries() == 100_000
    with override_settings(
        WAGTAIL_VECTOR_INDEX={"EMBEDDING_CACHE": {"ENABLED": False}}
    ):
        assert not embedding_cache.enabled()
    assert embedding_cache.enabled()  # The default.
