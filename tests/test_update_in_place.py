"""Updates in place: a few changed objects are written into the answering
build; a complete new build only for a change of model, dimensions or
chunking, for many changes, and on request (``rebuild=True``, ``--rebuild``).
Runs on the default storage and, with tests/settings_postgres.py, on pgvector."""

import io

import numpy as np
import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.storage import chunk_model
from tests.testapp.models import ArticlePage
from tests.utils import ARTICLES, OFFLINE, add_articles, spy_embedded
from wagtail_vector_index.index import IndexLeaseLostError, rebuild
from wagtail_vector_index.index.chunking import Chunk
from wagtail_vector_index.models import IndexUpdateLease

pytestmark = pytest.mark.django_db

INDEX = "testapp.articlepage"


@pytest.fixture(autouse=True)
def offline():
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        yield


@pytest.fixture
def index():
    return ArticlePage.vector_index


@pytest.fixture
def articles():
    return add_articles("in-place-home")


@pytest.fixture
def embedded(monkeypatch):
    """The texts the offline backend is asked to embed, call by call."""
    return spy_embedded(monkeypatch)


def rewrite(page, body):
    page.body = f"<p>{body}</p>"
    page.save_revision().publish()


def counts(index):
    """The state's counts, and the same counted in the table."""
    state = index.storage.state()
    rows = chunk_model().objects.filter(index_name=index.name, build=state.active_build)
    return (
        (state.chunk_count, state.object_count),
        (rows.count(), rows.values("content_type", "object_id").distinct().count()),
    )


def test_one_changed_page_is_written_in_place(index, articles, embedded):
    index.update()
    before = index.storage.state()
    rewrite(articles["Baking bread"], "Sourdough starter, patience and a cold night.")
    embedded.clear()

    report = index.update()

    assert report.in_place
    assert (report.changed, report.removed, report.embedded) == (1, 0, 1)
    # Only the changed page's chunk went to the provider.
    assert [len(call) for call in embedded] == [1]
    assert "Sourdough starter" in embedded[0][0]
    state = index.storage.state()
    assert state.active_build == before.active_build
    assert state.revision != before.revision
    assert index.search("sourdough starter patience", limit=1) == [
        articles["Baking bread"]
    ]
    assert index.search("telescope planets", limit=1) == [articles["Watching stars"]]
    assert counts(index)[0] == counts(index)[1]
    assert index.update().unchanged  # The unchanged-index check still holds.


def test_a_removed_page_is_removed_in_place(index, articles):
    index.update()
    articles["Pruning roses"].unpublish()

    report = index.update()

    assert report.in_place
    assert (report.changed, report.removed, report.embedded) == (0, 1, 0)
    assert articles["Pruning roses"] not in index.search("roses pruned", limit=5)
    assert counts(index)[0] == counts(index)[1]
    assert counts(index)[0][1] == len(ARTICLES) - 1


def test_many_changes_write_a_complete_new_build(index, articles):
    index.update()
    before = index.storage.state()
    for title in ("Baking bread", "Pruning roses"):  # 2 of 5: over a quarter.
        rewrite(articles[title], f"{title} rewritten from scratch.")

    report = index.update()

    assert not report.in_place
    assert (report.changed, report.removed, report.embedded) == (2, 0, 2)
    assert index.storage.state().active_build != before.active_build
    assert counts(index)[0] == counts(index)[1]


def test_rebuild_writes_a_complete_new_build_embedding_nothing_new(
    index, articles, embedded
):
    index.update()
    before = index.storage.state()
    embedded.clear()

    report = index.update(rebuild=True)

    assert not report.in_place
    assert (report.embedded, report.reused) == (0, len(ARTICLES))
    assert embedded == []
    assert index.storage.state().active_build != before.active_build


def test_the_command_rebuilds_on_request_and_says_how_it_updated(index, articles):
    index.update()
    rewrite(articles["Baking bread"], "Rye and spelt.")
    out = io.StringIO()
    call_command("update_vector_indexes", INDEX, "--noinput", stdout=out)
    assert "In place: 1 objects written again, 0 removed." in out.getvalue()

    build = index.storage.state().active_build
    out = io.StringIO()
    call_command("update_vector_indexes", INDEX, "--noinput", "--rebuild", stdout=out)
    assert (
        "A complete new build (0 objects changed, 0 removed) replaced the old one."
        in out.getvalue()
    )
    assert index.storage.state().active_build != build


def test_another_chunking_writes_a_complete_new_build(index, articles, monkeypatch):
    index.update()
    before = index.storage.state()
    assert before.chunking == index.chunking_signature()
    rewrite(articles["Baking bread"], "Rye and spelt.")
    monkeypatch.setattr(type(index), "chunk_overlap", index.chunk_overlap + 1)

    report = index.update()

    assert not report.in_place
    state = index.storage.state()
    assert state.active_build != before.active_build
    assert state.chunking == index.chunking_signature() != before.chunking


def test_a_build_of_unknown_chunking_is_changed_in_place(index, articles):
    # Built before the chunking was recorded (an upgraded site).
    index.update()
    index.storage.state().__class__.objects.update(chunking="")
    rewrite(articles["Baking bread"], "Rye and spelt.")
    assert index.update().in_place


def test_an_object_holding_an_invalid_vector_is_written_again_alone(index, articles):
    from tests.test_index_integrity import ON_PGVECTOR, set_vector

    if ON_PGVECTOR:
        pytest.skip("pgvector's HNSW index refuses a row of other dimensions.")
    index.update()
    bread = articles["Baking bread"]
    set_vector(bread, np.full(3, 0.1))  # 3 dimensions, not 512.

    report = index.update()

    assert report.in_place
    assert (report.changed, report.invalid) == (1, 1)
    assert index.update().unchanged
    assert index.search("flour yeast oven", limit=1) == [bread]


def test_groups_in_place_never_split_an_object(monkeypatch):
    monkeypatch.setattr(rebuild, "ROWS_PER_WRITE", 3)
    rows = [
        (1, obj, Chunk(position, f"{obj}{position}"))
        for obj, size in (("a", 2), ("b", 4), ("c", 1), ("d", 2))
        for position in range(size)
    ]
    whole = [
        [row[1] for row in group.rows]
        for group in rebuild._groups(rows, {}, 256, whole_objects=True)
    ]
    assert whole == [["a", "a", "b", "b", "b", "b"], ["c", "d", "d"]]
    # A new build may cut anywhere.
    cut = [len(group.rows) for group in rebuild._groups(rows, {}, 256)]
    assert cut == [3, 3, 3]


def test_an_interrupted_update_in_place_keeps_whole_objects(
    index, articles, monkeypatch
):
    index.update()
    rewrite(articles["Baking bread"], "Rye and spelt.")
    storage_class = type(index.storage)
    real = storage_class.apply_changes

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(storage_class, "apply_changes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        index.update()
    monkeypatch.setattr(storage_class, "apply_changes", real)

    # The page is as it was, whole; the next update writes it.
    assert index.search("flour yeast oven", limit=1) == [articles["Baking bread"]]
    report = index.update()
    assert report.in_place and report.changed == 1
    assert index.search("rye spelt", limit=1) == [articles["Baking bread"]]


def test_an_update_in_place_whose_lease_was_taken_writes_nothing_more(
    index, articles, monkeypatch
):
    from tests.test_index_integrity import expire

    index.update()
    old = index.storage.state()
    rewrite(articles["Baking bread"], "Rye and spelt.")
    real = rebuild._write_group

    def lose_the_lease_first(*args, **kwargs):
        expire(INDEX, owner="someone-else", holder="elsewhere:2")
        return real(*args, **kwargs)

    monkeypatch.setattr(rebuild, "_write_group", lose_the_lease_first)
    with pytest.raises(IndexLeaseLostError, match="Nothing more of this update"):
        index.update()

    assert index.storage.state().revision == old.revision
    assert index.search("flour yeast oven", limit=1) == [articles["Baking bread"]]
    assert IndexUpdateLease.objects.get(index_name=INDEX).owner == "someone-else"
