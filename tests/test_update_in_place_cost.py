"""What an update in place reads and writes: only the rows that changed are
written (rows equal to the new ones stay), and on pgvector a build with its
HNSW index is inspected without reading a vector.

Runs on the default storage and, with tests/settings_postgres.py, on pgvector
(the HNSW tests only there).
"""

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from wagtail.models import Page

from tests.storage import fill
from tests.testapp.models import ArticlePage
from tests.utils import ARTICLES, OFFLINE, root_page
from wagtail_vector_index.index.storage import ChunkRow, get_storage, to_bytes

pytestmark = pytest.mark.django_db

ON_PGVECTOR = bool(getattr(settings, "WVI_TEST_STORAGE", None))
pgvector_only = pytest.mark.skipif(
    not ON_PGVECTOR, reason="needs tests/settings_postgres.py (pgvector)"
)


@pytest.fixture(autouse=True)
def offline():
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        yield


def object_rows(storage, state, object_id):
    """``{position: (primary key, text, vector bytes)}`` of one object."""
    rows = storage.chunks(state.active_build).filter(object_id=object_id)
    return {
        position: (pk, text, data)
        for pk, position, text, data in storage._vector_rows(
            rows, ["pk", "position", "text"]
        )
    }


def vectors(seed, count=3, dimensions=8):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, dimensions)).astype(np.float32)


def test_rows_equal_to_the_new_ones_stay_and_only_the_others_are_written(
    content_type, monkeypatch
):
    storage = get_storage("cost.rows")
    state = fill(storage, content_type, vectors(1, count=4))
    first = vectors(2)
    storage.apply_changes(
        state,
        {
            (content_type, "o1"): [
                ChunkRow(content_type, "o1", i, f"t{i}", f"h{i}", to_bytes(first[i]))
                for i in range(3)
            ]
        },
    )
    before = object_rows(storage, state, "o1")
    written = []
    real = type(storage)._bulk

    def spy(self, build, rows):
        rows = list(rows)
        written.extend((row.position, row.text) for row in rows)
        return real(self, build, rows)

    monkeypatch.setattr(type(storage), "_bulk", spy)
    other = vectors(3)
    new = [
        # The same: stays.
        ChunkRow(content_type, "o1", 0, "t0", "h0", to_bytes(first[0])),
        # The same text and hash, another vector: written again.
        ChunkRow(content_type, "o1", 1, "t1", "h1", to_bytes(other[1])),
        # Another text.
        ChunkRow(content_type, "o1", 2, "new", "hnew", to_bytes(other[2])),
        ChunkRow(content_type, "o1", 3, "more", "hmore", to_bytes(other[0])),
    ]

    state = storage.apply_changes(
        state, {(content_type, "o1"): new, (content_type, "o2"): []}
    )

    assert written == [(1, "t1"), (2, "new"), (3, "more")]
    after = object_rows(storage, state, "o1")
    assert after[0] == before[0]  # The same row, untouched.
    assert after[1][0] != before[1][0]
    assert {p: (t, d) for p, (_, t, d) in after.items()} == {
        row.position: (row.text, row.vector) for row in new
    }
    assert state.chunk_count == storage.chunks(state.active_build).count() == 6
    assert state.object_count == 3
    assert not storage.chunks(state.active_build).filter(object_id="o2").exists()


def test_a_row_stored_twice_is_kept_once(content_type):
    storage = get_storage("cost.twice")
    state = fill(storage, content_type, vectors(4, count=2))
    vector = vectors(5)[0]
    row = ChunkRow(content_type, "o0", 0, "t", "h", to_bytes(vector))
    # Written without apply_changes, as a bug could have: the row twice.
    storage._bulk(state.active_build, storage._checked([row, row], 8, 0))
    storage.chunks(state.active_build).filter(object_id="o0", text="text o0").delete()
    assert storage.chunks(state.active_build).filter(object_id="o0").count() == 2

    state = storage.apply_changes(state, {(content_type, "o0"): [row]})

    assert list(
        storage.chunks(state.active_build)
        .filter(object_id="o0")
        .values_list("position", "text")
    ) == [(0, "t")]


@pgvector_only
def test_a_row_whose_path_changed_is_written_again(content_type):
    storage = get_storage("cost.path")
    state = fill(storage, content_type, vectors(6, count=2))
    vector = to_bytes(vectors(7)[0])
    row = ChunkRow(content_type, "o0", 0, "t", "h", vector, "0001", 1)
    state = storage.apply_changes(state, {(content_type, "o0"): [row]})
    (pk,) = (
        storage.chunks(state.active_build)
        .filter(object_id="o0")
        .values_list("pk", flat=True)
    )
    moved = ChunkRow(content_type, "o0", 0, "t", "h", vector, "00010002", 1)

    state = storage.apply_changes(state, {(content_type, "o0"): [moved]})

    assert list(
        storage.chunks(state.active_build)
        .filter(object_id="o0")
        .values_list("pk", "path", "locale_id")
    ) != [(pk, "0001", 1)]
    assert list(
        storage.chunks(state.active_build)
        .filter(object_id="o0")
        .values_list("path", "locale_id")
    ) == [("00010002", 1)]


def test_an_edited_page_writes_only_its_changed_chunks(monkeypatch):
    home = root_page().add_child(instance=Page(title="Home", slug="cost-home"))
    pages = [
        home.add_child(
            instance=ArticlePage(title=title, body=f"<p>{body}</p>", intro="")
        )
        for title, body in ARTICLES.items()
    ]
    long_body = " ".join(f"Paragraph {n} about soil, water and sun." for n in range(60))
    pages[0].body = f"<p>{long_body}</p>"
    pages[0].save_revision().publish()
    index = ArticlePage.vector_index
    index.max_chunk_tokens = 64
    index.update()
    storage = index.storage
    state = storage.state()
    before = storage.chunks(state.active_build).filter(object_id=str(pages[0].pk))
    stored = dict(before.values_list("position", "content_hash"))
    assert len(stored) > 3

    written = []
    real = type(storage)._bulk

    def spy(self, build, rows):
        rows = list(rows)
        written.extend(row.position for row in rows)
        return real(self, build, rows)

    monkeypatch.setattr(type(storage), "_bulk", spy)
    pages[0].body = f"<p>{long_body} And one more about compost.</p>"
    pages[0].save_revision().publish()
    report = index.update()

    assert report.in_place and report.changed == 1
    state = storage.state()
    after = dict(
        storage.chunks(state.active_build)
        .filter(object_id=str(pages[0].pk))
        .values_list("position", "content_hash")
    )
    changed = sorted(p for p, h in after.items() if stored.get(p) != h)
    assert written == changed and 0 < len(changed) < len(after)
    assert state.chunk_count == storage.chunks(state.active_build).count()
    assert index.search("compost", limit=1) == [pages[0].specific]
    assert index.update().unchanged


@pgvector_only
def test_a_build_with_its_hnsw_index_is_inspected_without_reading_vectors(
    content_type,
):
    storage = get_storage("cost.hnsw")
    state = fill(storage, content_type, vectors(8, count=20))
    assert storage.hnsw_indexes() == [storage.hnsw_index_name(state.active_build)]
    assert storage._vectors_fit(state)

    with CaptureQueriesContext(connection) as queries:
        found = storage.inspect(state)

    assert len(found.keys) == len(found.hashes) == 20 and found.invalid == 0
    reads = [q["sql"] for q in queries if "pgvector_chunk" in q["sql"]]
    assert reads and not any("vector_dims" in sql for sql in reads), reads
    assert not any('"embedding"' in sql for sql in reads), reads

    # Another dimension count than the index's, or no index: each is checked.
    state.dimensions = 9
    assert not storage._vectors_fit(state)
    state.dimensions = 8
    storage._drop_hnsw_indexes(keep="")
    assert not storage._vectors_fit(state)
    with CaptureQueriesContext(connection) as queries:
        assert storage.inspect(state).hashes == found.hashes
    assert any("vector_dims" in q["sql"] for q in queries)


@pgvector_only
def test_an_invalid_hnsw_index_is_not_trusted(content_type):
    storage = get_storage("cost.invalid")
    state = fill(storage, content_type, vectors(9, count=5))
    name = storage.hnsw_index_name(state.active_build)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass(%s)",
            [connection.ops.quote_name(name)],
        )
    assert not storage._vectors_fit(state)


def test_vectors_are_found_where_inspect_saw_them(content_type):
    storage = get_storage("cost.places")
    stored = vectors(10, count=6)
    state = fill(storage, content_type, stored)
    by_object = dict(
        storage.chunks(state.active_build).values_list("object_id", "content_hash")
    )
    hashes = [by_object[f"o{i}"] for i in range(6)]
    expected = get_storage("cost.places").vectors_by_hash(state, hashes)
    assert len(expected) == 6
    storage.inspect(state)

    with CaptureQueriesContext(connection) as queries:
        assert storage.vectors_by_hash(state, hashes) == expected
    reads = [q["sql"] for q in queries if "content_hash" in q["sql"]]
    assert reads and not any('"content_hash" IN' in sql for sql in reads), reads

    # A row replaced since: its hash is searched for; one gone is not found.
    storage.apply_changes(
        state,
        {
            (content_type, "o0"): [
                ChunkRow(content_type, "o0", 0, "moved", hashes[0], expected[hashes[0]])
            ],
            (content_type, "o1"): [],
        },
    )
    found = storage.vectors_by_hash(state, hashes)
    assert found == {h: v for h, v in expected.items() if h != hashes[1]}
