"""Moving an index to another storage re-embeds nothing: the update fills the
new storage from the one the index was kept in. Between the default storage
and Qdrant (local mode) everywhere; between the default storage and pgvector
on PostgreSQL (tests/settings_postgres.py)."""

import pytest
from django.conf import settings
from django.test import override_settings

from tests.testapp.models import ArticlePage
from tests.utils import ARTICLES, OFFLINE, add_articles, spy_embedded

pytestmark = pytest.mark.django_db

ON_POSTGRES = bool(getattr(settings, "WVI_TEST_STORAGE", None))
needs_postgres = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="pgvector needs PostgreSQL: --ds=tests.settings_postgres",
)
DATABASE = "wagtail_vector_index.index.storage.DatabaseStorage"
PGVECTOR = "wagtail_vector_index.index.storage.pgvector.PgvectorStorage"
QDRANT = {
    "CLASS": "wagtail_vector_index.index.storage.qdrant.QdrantStorage",
    "CONFIG": {"LOCATION": ":memory:", "COLLECTION_PREFIX": "moving"},
}


def storage(setting):
    return override_settings(WAGTAIL_VECTOR_INDEX={**OFFLINE, "STORAGE": setting})


@pytest.fixture
def articles():
    return add_articles("moving-home")


@pytest.fixture
def embedded(monkeypatch):
    return spy_embedded(monkeypatch)


def texts(batches):
    return [text for batch in batches for text in batch]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(DATABASE, PGVECTOR, marks=needs_postgres, id="database-pgvector"),
        pytest.param(PGVECTOR, DATABASE, marks=needs_postgres, id="pgvector-database"),
        pytest.param(DATABASE, QDRANT, id="database-qdrant"),
    ],
)
def test_moving_to_another_storage_embeds_nothing(articles, embedded, before, after):
    index = ArticlePage.vector_index
    with storage(before):
        index.update()
        old_build = index.storage.state().active_build
    bread = articles["Baking bread"]
    bread.body = "<p>Rye, spelt and a cold night.</p>"
    bread.save_revision().publish()
    embedded.clear()

    with storage(after):
        estimate = index.estimate()
        report = index.update()
        sent = texts(embedded)
        state = index.storage.state()
        assert index.search("flour telescope", limit=5)
        assert index.search("rye spelt", limit=1) == [bread]

    # Only the changed page is embedded; the rest comes from the old storage.
    assert len(sent) == 1 and "Rye, spelt" in sent[0]
    assert (estimate.chunks_to_embed, estimate.chunks_cached) == (1, len(ARTICLES) - 1)
    assert (report.embedded, report.cached) == (1, len(ARTICLES) - 1)
    assert not report.in_place
    assert state.active_build != old_build
    with storage(after):
        assert sum(index.storage.inspect(state).keys.values()) == len(ARTICLES)

    if after == QDRANT:
        return  # Not read once STORAGE no longer names it (docs/qdrant.md).
    # Moved back: the same again, from the storage it just left.
    embedded.clear()
    with storage(before):
        report = index.update()
        assert embedded == []
        assert index.search("rye spelt", limit=1) == [bread]
    assert (report.embedded, report.cached) == (0, len(ARTICLES))


def test_vectors_of_another_model_are_not_taken(articles, embedded):
    index = ArticlePage.vector_index
    with storage(DATABASE):
        index.update()
    other = {
        **OFFLINE,
        "STORAGE": QDRANT,
        "EMBEDDING_BACKENDS": {
            "default": {
                "CLASS": OFFLINE["EMBEDDING_BACKENDS"]["default"]["CLASS"],
                "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": 128},
            }
        },
    }
    embedded.clear()
    with override_settings(WAGTAIL_VECTOR_INDEX=other):
        report = index.update()
    assert (report.embedded, report.cached) == (len(ARTICLES), 0)
    assert len(texts(embedded)) == len(ARTICLES)
