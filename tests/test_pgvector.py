"""The pgvector storage: HNSW indexes, exact and indexed search, builds.

Most tests need PostgreSQL with pgvector and are skipped otherwise; run them
with ``python -m pytest --ds=tests.settings_postgres -p no:playwright
tests/test_pgvector.py`` (tests/postgres.py starts a throwaway server). The
configuration errors and the import test run on SQLite too.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.test import override_settings

from tests.storage import brute_force, fill
from wagtail_vector_index.index import InvalidVectorError
from wagtail_vector_index.index.storage import ChunkRow, get_storage, to_bytes

APP = "wagtail_vector_index.contrib.pgvector"
STORAGE = "wagtail_vector_index.index.storage.pgvector.PgvectorStorage"
ON_POSTGRES = connection.vendor == "postgresql" and apps.is_installed(APP)
REPOSITORY = Path(__file__).resolve().parent.parent

postgres_only = pytest.mark.skipif(
    not ON_POSTGRES,
    reason="needs PostgreSQL with pgvector: python -m pytest "
    "--ds=tests.settings_postgres -p no:playwright tests/test_pgvector.py",
)


@pytest.fixture
def pgvector_settings():
    from tests.utils import OFFLINE

    with override_settings(WAGTAIL_VECTOR_INDEX={**OFFLINE, "STORAGE": STORAGE}):
        yield


def hnsw_indexes(table="wagtail_vector_index_pgvector_chunk"):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexname, i.indexdef, x.indisvalid FROM pg_indexes i "
            "JOIN pg_class c ON c.relname = i.indexname "
            "JOIN pg_index x ON x.indexrelid = c.oid "
            "WHERE i.tablename = %s AND i.indexdef LIKE %s",
            [table, "%USING hnsw%"],
        )
        return {name: (definition, valid) for name, definition, valid in cursor}


def explain(sql):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


# -- configuration errors (any database) ---------------------------------------


@pytest.mark.skipif(ON_POSTGRES, reason="the app is installed in this run")
def test_selected_without_the_app_says_how_to_install_it(pgvector_settings):
    with pytest.raises(ImproperlyConfigured, match="INSTALLED_APPS") as caught:
        get_storage("testapp.articlepage")
    assert APP in str(caught.value)
    assert "migrate" in str(caught.value)


@postgres_only
def test_selected_on_another_database_says_postgresql_is_needed(
    pgvector_settings, monkeypatch
):
    monkeypatch.setattr(connection, "vendor", "sqlite")
    monkeypatch.setattr(connection, "display_name", "SQLite")
    with pytest.raises(ImproperlyConfigured, match="needs PostgreSQL") as caught:
        get_storage("testapp.articlepage")
    assert "SQLite" in str(caught.value)


@postgres_only
def test_system_check_when_the_app_is_on_another_database(monkeypatch):
    from wagtail_vector_index.contrib.pgvector.checks import check_database

    assert check_database() == []
    monkeypatch.setattr(connection, "vendor", "sqlite")
    monkeypatch.setattr(connection, "display_name", "SQLite")
    (error,) = check_database()
    assert error.id == "wagtail_vector_index.pgvector.E001"
    assert "not PostgreSQL" in error.msg


def test_loading_the_app_imports_neither_numpy_nor_pgvector():
    code = (
        "import sys, django; django.setup()\n"
        "import wagtail_vector_index.contrib.pgvector.models\n"
        "import wagtail_vector_index.index.storage.pgvector\n"
        "import wagtail_vector_index.checks\n"
        "print('numpy' in sys.modules, 'pgvector' in sys.modules)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_postgres",
        # Read by tests/postgres.py instead of starting a server; nothing
        # connects to it.
        "WVI_POSTGRES_URL": "postgresql://nobody@127.0.0.1:9/nothing",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False False"


# -- PostgreSQL ----------------------------------------------------------------


@postgres_only
@pytest.mark.django_db
def test_hnsw_index_of_the_active_build(pgvector_settings):
    from wagtail.models import Page

    from tests.testapp.models import ArticlePage
    from tests.utils import ARTICLES

    root = Page.get_first_root_node()
    parent = root.add_child(instance=Page(title="Home", slug="pgvector-home"))
    pages = [
        parent.add_child(
            instance=ArticlePage(title=title, body=f"<p>{body}</p>", intro="")
        )
        for title, body in ARTICLES.items()
    ]
    index = ArticlePage.vector_index

    index.update()

    state = index.storage.state()
    name = index.storage.hnsw_index_name(state.active_build)
    assert index.storage.hnsw_indexes() == [name]
    definition, valid = hnsw_indexes()[name]
    assert valid
    assert "USING hnsw (((embedding)::vector(512)) vector_cosine_ops)" in definition
    assert "index_name)::text = 'testapp.articlepage'::text" in definition
    assert f"build = {state.active_build}" in definition

    # An update in place goes into the build's index.
    pages[0].body = "<p>Greenhouse tomatoes in winter.</p>"
    pages[0].save_revision().publish()
    assert index.update().in_place
    assert index.storage.hnsw_indexes() == [name]
    assert index.search("greenhouse", limit=1) == [pages[0].specific]

    # A new build gets its own index; the old build's is dropped with it.
    index.update(rebuild=True)
    new_state = index.storage.state()
    assert new_state.active_build == state.active_build + 1
    assert index.storage.hnsw_indexes() == [
        index.storage.hnsw_index_name(new_state.active_build)
    ]
    assert index.search("greenhouse", limit=1) == [pages[0].specific]


@postgres_only
@pytest.mark.django_db
def test_search_equals_a_brute_force_cosine_ranking(content_type):
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((60, 24)).astype(np.float32)
    storage = PgvectorStorage("pgvector.brute")
    state = fill(storage, content_type, vectors)

    for query in rng.standard_normal((5, 24)):
        hits = storage.search(state, query, 10)
        ids, scores = brute_force(vectors, query, 10)
        assert [hit.object_id for hit in hits] == ids
        assert [hit.score for hit in hits] == pytest.approx(scores, abs=1e-5)
        assert hits[0].text == f"text {ids[0]}"
    # The stored vectors are the written float32 values, exactly.
    stored = storage.vectors_by_hash(state)
    assert sorted(stored.values()) == sorted(to_bytes(v) for v in vectors)
    (first,) = storage.object_vectors(state, content_type, "o3")
    assert first.dtype == np.float32 and np.array_equal(first, vectors[3])


@postgres_only
@pytest.mark.django_db
def test_indexed_search_agrees_with_brute_force_and_returns_enough_rows(
    content_type,
):
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    rng = np.random.default_rng(11)
    # Clustered, as embeddings are (uniform random vectors are HNSW's worst case).
    centres = rng.standard_normal((12, 32))
    vectors = (
        centres[rng.integers(0, 12, 600)] + 0.35 * rng.standard_normal((600, 32))
    ).astype(np.float32)
    storage = PgvectorStorage("pgvector.indexed")
    state = fill(storage, content_type, vectors)
    with connection.cursor() as cursor:
        # This test's transaction: 600 rows are few enough that PostgreSQL 18
        # would rather read them through the btree index and sort them.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
    assert "Index Scan using wvi_hnsw_" in explain(
        storage.search_sql(state, vectors[0], 10)
    )

    recalls = []
    for query in rng.standard_normal((10, 32)) + centres[:10]:
        hits = storage.search(state, query, 10)
        ids, _ = brute_force(vectors, query, 10)
        recalls.append(len({h.object_id for h in hits} & set(ids)) / 10)
        # Whatever HNSW finds comes with its exact score, best first.
        exact = dict(zip(*brute_force(vectors, query, 600), strict=True))
        assert [h.score for h in hits] == pytest.approx(
            [exact[h.object_id] for h in hits], abs=1e-5
        )
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert np.mean(recalls) >= 0.9, recalls

    # HNSW returns at most hnsw.ef_search rows (40 by default): the storage
    # raises it to the limit, and scans exactly above pgvector's 1,000.
    assert len(storage.search(state, vectors[0], 150)) == 150
    assert len(storage.search(state, vectors[0], 1200)) == 600


@postgres_only
@pytest.mark.django_db
def test_indexes_with_different_dimensions_coexist(content_type):
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    rng = np.random.default_rng(3)
    small_vectors = rng.standard_normal((30, 8)).astype(np.float32)
    large_vectors = rng.standard_normal((40, 96)).astype(np.float32)
    small, large = PgvectorStorage("pgvector.small"), PgvectorStorage("pgvector.large")
    small_state = fill(small, content_type, small_vectors, prefix="o")
    large_state = fill(large, content_type, large_vectors, prefix="o")

    definitions = {name: d for name, (d, _) in hnsw_indexes().items()}
    assert "vector(8)" in definitions[small.hnsw_index_name(small_state.active_build)]
    assert "vector(96)" in definitions[large.hnsw_index_name(large_state.active_build)]
    for storage, state, vectors in [
        (small, small_state, small_vectors),
        (large, large_state, large_vectors),
    ]:
        query = rng.standard_normal(vectors.shape[1])
        hits = storage.search(state, query, 5)
        assert [h.object_id for h in hits] == brute_force(vectors, query, 5)[0]
        assert len(storage.search(state, query, 100)) == len(vectors)
    with pytest.raises(InvalidVectorError, match="has 96 dimensions; the index has 8"):
        small.search(small_state, rng.standard_normal(96), 5)

    # Rebuilding one with another model and size leaves the other alone.
    other = rng.standard_normal((10, 16)).astype(np.float32)
    small_state = fill(small, content_type, other, model_id="other", prefix="n")
    assert small_state.dimensions == 16
    assert len(large.search(large_state, rng.standard_normal(96), 100)) == 40
    assert {h.object_id for h in small.search(small_state, other[0], 100)} == {
        f"n{i}" for i in range(10)
    }
    assert small.hnsw_indexes() == [small.hnsw_index_name(small_state.active_build)]
    assert large.hnsw_indexes() == [large.hnsw_index_name(large_state.active_build)]


@postgres_only
@pytest.mark.django_db
def test_an_interrupted_build_keeps_the_old_one_answering(content_type):
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    rng = np.random.default_rng(5)
    old = rng.standard_normal((20, 12)).astype(np.float32)
    storage = PgvectorStorage("pgvector.interrupted")
    state = fill(storage, content_type, old)
    query = old[4]

    # A new build written, its HNSW index made, then the process dies before
    # the switch (say, killed during activate).
    build = storage.next_build()
    new = rng.standard_normal((25, 12)).astype(np.float32)
    storage.write_build(
        build,
        (
            ChunkRow(content_type, f"n{i}", 0, "new", f"new{i}", to_bytes(v))
            for i, v in enumerate(new)
        ),
    )
    storage.create_hnsw_index(build, 12)

    assert storage.state().active_build == state.active_build
    hits = storage.search(storage.state(), query, 3)
    assert hits[0].object_id == "o4" and hits[0].score == pytest.approx(1.0)
    assert all(h.object_id.startswith("o") for h in storage.search(state, query, 100))
    assert {key[1] for key in storage.keys(state)} == {f"o{i}" for i in range(20)}

    # The next run clears the half-made build and its index, then succeeds.
    assert storage.next_build() == build
    assert storage.hnsw_indexes() == [storage.hnsw_index_name(state.active_build)]
    assert not storage.chunks(build).exists()
    state = fill(storage, content_type, new, prefix="n")
    assert state.active_build == build
    assert storage.search(state, new[7], 1)[0].object_id == "n7"
    assert not storage.chunks(build - 1).exists()


@postgres_only
@pytest.mark.django_db
def test_explain_uses_the_hnsw_index_on_a_large_enough_build(content_type):
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    rng = np.random.default_rng(13)
    storage = PgvectorStorage("pgvector.explain")
    state = fill(storage, content_type, rng.standard_normal((1000, 64)))
    # Another index's rows in the same table: the partial index leaves them out.
    fill(
        PgvectorStorage("pgvector.noise"), content_type, rng.standard_normal((300, 64))
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE wagtail_vector_index_pgvector_chunk")

    plan = explain(storage.search_sql(state, rng.standard_normal(64), 10))

    name = storage.hnsw_index_name(state.active_build)
    assert f"Index Scan using {name}" in plan, plan
    assert "Seq Scan" not in plan and "Sort" not in plan, plan


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_indexes_are_built_and_dropped_concurrently(
    content_type,
):
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    rng = np.random.default_rng(17)
    storage = PgvectorStorage("pgvector.concurrent")
    executed = []

    def record(execute, sql, params, many, context):
        executed.append(sql)
        return execute(sql, params, many, context)

    try:
        with connection.execute_wrapper(record):
            first = fill(storage, content_type, rng.standard_normal((50, 16)))
            second = fill(storage, content_type, rng.standard_normal((50, 16)))
        assert any(sql.startswith("CREATE INDEX CONCURRENTLY") for sql in executed)
        assert any(sql.startswith("DROP INDEX CONCURRENTLY") for sql in executed)
        name = storage.hnsw_index_name(second.active_build)
        assert storage.hnsw_indexes() == [name]
        assert hnsw_indexes()[name][1]  # Valid.
        assert second.active_build == first.active_build + 1
    finally:
        # The test database is emptied, not rolled back, after this test:
        # indexes would outlive their rows.
        storage._drop_hnsw_indexes(keep="")


@postgres_only
@pytest.mark.django_db
def test_awkward_index_names_zero_vectors_and_huge_dimensions(content_type, caplog):
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    rng = np.random.default_rng(19)
    # Quotes, a backslash and a percent sign end up in SQL literals.
    storage = PgvectorStorage("it's a \\ 100% index")
    vectors = rng.standard_normal((5, 4)).astype(np.float32)
    vectors[2] = 0.0
    state = fill(storage, content_type, vectors)
    assert storage.hnsw_index_name(state.active_build) in hnsw_indexes()
    hits = storage.search(state, vectors[0], 10)
    assert hits[0].object_id == "o0"
    # A zero vector has no cosine similarity: HNSW leaves it out of the
    # index, an exact scan (any limit above 1,000) finds it with a score of
    # 0, not NaN.
    assert all(h.object_id != "o2" or h.score == 0.0 for h in hits)
    exact = {h.object_id: h.score for h in storage.search(state, vectors[0], 1001)}
    assert len(exact) == 5 and exact["o2"] == 0.0

    # pgvector cannot index more than 2,000 dimensions: exact scans instead.
    wide = PgvectorStorage("pgvector.wide")
    wide_vectors = rng.standard_normal((4, 2001)).astype(np.float32)
    with caplog.at_level("WARNING"):
        wide_state = fill(wide, content_type, wide_vectors)
    assert "more than pgvector can index" in caplog.text
    assert wide.hnsw_index_name(wide_state.active_build) not in hnsw_indexes()
    assert wide.search(wide_state, wide_vectors[1], 1)[0].object_id == "o1"


@postgres_only
@pytest.mark.django_db
def test_replace_object_goes_into_the_indexed_build(content_type):
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    rng = np.random.default_rng(23)
    vectors = rng.standard_normal((600, 16)).astype(np.float32)
    storage = PgvectorStorage("pgvector.replace")
    state = fill(storage, content_type, vectors)
    revision = state.revision
    replacement = rng.standard_normal(16).astype(np.float32)

    storage.replace_object(
        state,
        content_type,
        "o9",
        [
            ChunkRow(content_type, "o9", 0, "a", "r0", to_bytes(replacement)),
            ChunkRow(content_type, "o9", 1, "b", "r1", to_bytes(-replacement)),
        ],
    )

    state.refresh_from_db()
    assert state.revision != revision
    assert state.chunk_count == 601 and state.object_count == 600
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        assert "Index Scan using wvi_hnsw_" in explain(
            storage.search_sql(state, replacement, 1)
        )
        (hit,) = storage.search(state, replacement, 1)
    assert (hit.object_id, hit.position, hit.text) == ("o9", 0, "a")
    assert [v.tolist() for v in storage.object_vectors(state, content_type, "o9")] == [
        replacement.tolist(),
        (-replacement).tolist(),
    ]


def maintenance_work_mem():
    with connection.cursor() as cursor:
        cursor.execute("SHOW maintenance_work_mem")
        return cursor.fetchone()[0]


@postgres_only
@pytest.mark.django_db
def test_hnsw_build_memory_is_set_for_the_build_only(content_type):
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    class RoomyStorage(PgvectorStorage):
        hnsw_maintenance_work_mem = "96MB"

    before = maintenance_work_mem()
    assert before != "96MB"
    seen = []

    def record(execute, sql, params, many, context):
        if sql.startswith("CREATE INDEX"):
            seen.append(maintenance_work_mem())  # What the build runs with.
        return execute(sql, params, many, context)

    rng = np.random.default_rng(23)
    storage = RoomyStorage("pgvector.roomy")
    with connection.execute_wrapper(record):
        state = fill(storage, content_type, rng.standard_normal((20, 8)))
    assert seen == ["96MB"]
    assert maintenance_work_mem() == before
    assert storage.search(state, rng.standard_normal(8), 3)

    # Off by default: the server's value, no SET at all.
    seen.clear()
    with connection.execute_wrapper(record):
        fill(PgvectorStorage("pgvector.default"), content_type, np.eye(8))
    assert seen == [before]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_refused_build_memory_setting_fails_clearly_and_changes_nothing(
    content_type,
):
    from django.db import DatabaseError

    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    class WrongStorage(PgvectorStorage):
        hnsw_maintenance_work_mem = "plenty"

    before = maintenance_work_mem()
    storage = WrongStorage("pgvector.wrong")
    try:
        with pytest.raises(DatabaseError, match="maintenance_work_mem"):
            fill(storage, content_type, np.eye(4))
        assert maintenance_work_mem() == before
        assert storage.state() is None  # Not activated: nothing answers wrong.
    finally:
        storage._drop_hnsw_indexes(keep="")


@postgres_only
@pytest.mark.django_db
def test_vectors_travel_in_binary_form_never_as_text(content_type, monkeypatch):
    """Writes (a binary COPY in pgvector's own form), reads (``vector_send``)
    and the reuse of stored vectors in the next build never format a vector
    as text, and keep every float32 bit."""
    import struct

    from wagtail_vector_index.contrib.pgvector import fields
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    def no_text(vector):
        raise AssertionError("a vector was turned into text")

    monkeypatch.setattr(fields, "to_text", no_text)
    # Values text with too few digits would not give back exactly.
    vectors = np.array(
        [[1 / 3, -0.0, 1e-45, 3.4e38], [np.pi, -np.e, 1e-7, 0.1]], dtype=np.float32
    )
    storage = PgvectorStorage("pgvector.binary")
    state = fill(storage, content_type, vectors)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT object_id, vector_send(embedding) FROM "
            "wagtail_vector_index_pgvector_chunk WHERE index_name = %s "
            "ORDER BY object_id",
            ["pgvector.binary"],
        )
        wire = dict(cursor.fetchall())
    for i, vector in enumerate(vectors):
        expected = struct.pack(">HH", 4, 0) + vector.astype(">f4").tobytes()
        assert bytes(wire[f"o{i}"]) == expected

    # Reuse on rebuild: the stored vectors come back as the same float32
    # bytes and are written into the next build unchanged.
    reused = storage.vectors_by_hash(state)
    build = storage.next_build()
    storage.write_build(
        build,
        [
            ChunkRow(content_type, f"o{i}", 0, "again", digest, reused[digest])
            for i, digest in enumerate(sorted(reused))
        ],
        dimensions=4,
    )
    state = storage.activate(build, model_id="m", dimensions=4, object_count=2)
    assert sorted(storage.vectors_by_hash(state).values()) == sorted(
        v.tobytes() for v in vectors
    )


# -- scoped searches -------------------------------------------------------------


def _scoped_rows(content_type, vectors):
    """A chunk per vector, one page each: one in ten under the tree path
    ``00010002``, the rest under ``00010003``."""
    return [
        ChunkRow(
            content_type,
            f"o{i}",
            0,
            f"text o{i}",
            f"hash-o{i}",
            to_bytes(vector),
            path=("00010002" if i % 10 == 0 else "00010003") + f"{i:04d}",
            locale_id=1,
        )
        for i, vector in enumerate(vectors)
    ]


def _scoped_fill(content_type, count=1_000, dimensions=32):
    """``count`` clustered vectors, one page each: one in ten under the
    tree path ``00010002``, the rest under ``00010003``."""
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    rng = np.random.default_rng(21)
    centres = rng.standard_normal((8, dimensions))
    vectors = (
        centres[rng.integers(0, 8, count)]
        + 0.3 * rng.standard_normal((count, dimensions))
    ).astype(np.float32)
    storage = PgvectorStorage("pgvector.scoped")
    build = storage.next_build()
    storage.write_build(build, _scoped_rows(content_type, vectors))
    state = storage.activate(
        build, model_id="m", dimensions=dimensions, object_count=count
    )
    return storage, state, vectors, centres


def _settings(*names):
    with connection.cursor() as cursor:
        return [
            cursor.execute("SELECT current_setting(%s, true)", [name]).fetchone()[0]
            for name in names
        ]


WALK = ("hnsw.iterative_scan", "hnsw.max_scan_tuples", "enable_seqscan", "enable_sort")


@postgres_only
@pytest.mark.django_db
def test_a_scoped_search_walks_the_hnsw_index_and_finds_the_best_in_scope(
    content_type,
):
    from wagtail_vector_index.index.storage import Where

    storage, state, vectors, centres = _scoped_fill(content_type)
    if not storage.iterative_scans():
        pytest.skip("pgvector before 0.8: scoped searches compare exactly")
    where = Where(paths=("00010002",), locale_id=1)
    assert "Index Scan using wvi_hnsw_" in _plan(storage, state, centres[0], where)

    # In the caller's transaction: the walk's settings are put back.
    before = _settings(*WALK)
    recalls = []
    for query in centres:
        hits = storage.search(state, query, 20, where=where)
        assert len(hits) == 20
        assert all(int(hit.object_id[1:]) % 10 == 0 for hit in hits)
        scores = [hit.score for hit in hits]
        assert scores == sorted(scores, reverse=True)
        allowed = vectors[::10]
        ids, _ = brute_force(allowed, query, 20)
        exact = {f"o{int(i[1:]) * 10}" for i in ids}
        recalls.append(len(exact & {hit.object_id for hit in hits}) / 20)
    assert np.mean(recalls) >= 0.9, recalls
    assert _settings(*WALK) == before


@postgres_only
@pytest.mark.django_db
def test_a_scope_too_narrow_for_the_walk_is_compared_exactly(content_type):
    from wagtail_vector_index.index.storage import Where

    storage, state, vectors, centres = _scoped_fill(content_type)
    # Three pages of a thousand: the walk stops at its bound, then every
    # vector the scope allows is compared.
    where = Where(paths=("000100020000", "000100020010", "000100020020"))
    hits = storage.search(state, centres[1], 10, where=where)
    assert sorted(hit.object_id for hit in hits) == ["o0", "o10", "o20"]


def _second_site():
    """A Wagtail site whose root page is at ``00010002`` (the tree path
    :func:`_scoped_fill` puts one page in ten under)."""
    from wagtail.models import Page, Site

    root = Page.get_first_root_node()
    page = root.add_child(instance=Page(title="Second site", slug="second-site"))
    assert page.path == "00010002"
    return Site.objects.create(hostname="second.test", port=80, root_page=page)


def _plan(storage, state, vector, where):
    conditions, params = storage.where_sql(where)
    sql = storage.search_sql(state, vector, 20, iterative=True, conditions=conditions)
    with connection.cursor() as cursor:
        for name, value in (
            ("enable_seqscan", "off"),
            ("enable_bitmapscan", "off"),
            ("enable_sort", "off"),
        ):
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
        cursor.execute("EXPLAIN " + sql, params)
        return "\n".join(row[0] for row in cursor.fetchall())


@postgres_only
@pytest.mark.django_db
def test_a_site_holding_a_small_share_gets_an_hnsw_index_of_its_own(
    content_type, monkeypatch
):
    from wagtail_vector_index.index.storage import Where
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    monkeypatch.setattr(PgvectorStorage, "site_index_min_rows", 50)
    site = _second_site()
    storage, state, vectors, centres = _scoped_fill(content_type)
    if not storage.iterative_scans():
        assert storage.create_site_indexes(state.active_build, 32) == []
        pytest.skip("pgvector before 0.8: scoped searches compare exactly")
    name = storage.site_index_name(state.active_build, "00010002")
    main = storage.hnsw_index_name(state.active_build)
    indexes = hnsw_indexes()
    # The default site (root 00010001) holds none of these rows: no index.
    assert sorted(n for n in indexes if n.startswith(main)) == [main, name]
    definition, valid = indexes[name]
    assert valid and "00010002%" in definition

    where = Where(paths=("00010002",), locale_id=1)
    assert f"Index Scan using {name} " in _plan(storage, state, centres[0], where)
    assert f"Index Scan using {main} " in _plan(storage, state, centres[0], None)
    recalls = []
    for query in centres:
        hits = storage.search(state, query, 20, where=where)
        assert len(hits) == 20
        assert all(int(hit.object_id[1:]) % 10 == 0 for hit in hits)
        ids, _ = brute_force(vectors[::10], query, 20)
        exact = {f"o{int(i[1:]) * 10}" for i in ids}
        recalls.append(len(exact & {hit.object_id for hit in hits}) / 20)
    assert np.mean(recalls) >= 0.9, recalls

    # A page written in place goes into the site's index too.
    target = (centres[3] * 3).astype(np.float32)
    state = storage.apply_changes(
        state,
        {
            (content_type, "new"): [
                ChunkRow(
                    content_type,
                    "new",
                    0,
                    "new",
                    "hash-new",
                    to_bytes(target),
                    path="000100020999",
                    locale_id=1,
                )
            ]
        },
    )
    assert storage.search(state, target, 5, where=where)[0].object_id == "new"

    # A new build gets its own; the old build's go with it.
    build = storage.next_build()
    storage.write_build(build, _scoped_rows(content_type, vectors))
    state = storage.activate(build, model_id="m", dimensions=32, object_count=1000)
    new_main = storage.hnsw_index_name(build)
    assert sorted(hnsw_indexes()) == [
        new_main,
        storage.site_index_name(build, "00010002"),
    ]

    # A site that is gone loses its index at the next update's upkeep.
    site.delete()
    storage.maintain(state)
    assert sorted(hnsw_indexes()) == [new_main]


@postgres_only
@pytest.mark.django_db
def test_a_site_added_after_the_build_gets_its_index_at_the_next_update(
    content_type, monkeypatch
):
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    monkeypatch.setattr(PgvectorStorage, "site_index_min_rows", 50)
    storage, state, vectors, centres = _scoped_fill(content_type)
    if not storage.iterative_scans():
        pytest.skip("pgvector before 0.8: no site indexes")
    main = storage.hnsw_index_name(state.active_build)
    assert [n for n in hnsw_indexes() if n.startswith(main)] == [main]
    _second_site()
    storage.maintain(state)
    name = storage.site_index_name(state.active_build, "00010002")
    assert sorted(n for n in hnsw_indexes() if n.startswith(main)) == [main, name]
    # A site holding more than half of the build walks the build's index.
    monkeypatch.setattr(PgvectorStorage, "site_index_max_share", 0.05)
    storage.site_index_name(state.active_build, "00010002")
    assert storage.create_site_indexes(state.active_build, 32) == [name]  # Kept.


# -- updates in place written by several connections ------------------------------


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_update_in_place_writes_shares_of_its_objects_at_once(
    content_type, monkeypatch
):
    import threading

    from wagtail_vector_index.index import rebuild
    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    rng = np.random.default_rng(5)
    storage = PgvectorStorage("pgvector.shares")
    try:
        state = fill(storage, content_type, rng.standard_normal((200, 16)))
        calls = []
        both_writing = threading.Barrier(2, timeout=20)
        real = PgvectorStorage._bulk

        def bulk(self, build, rows):
            rows = list(rows)
            calls.append((threading.current_thread().name, {r.object_id for r in rows}))
            real(self, build, rows)
            # Each writer has inserted its rows and not committed: both
            # transactions are open at once (one would wait forever for the
            # other if they took turns from their start).
            both_writing.wait()

        monkeypatch.setattr(PgvectorStorage, "_bulk", bulk)
        new = rng.standard_normal((30, 16)).astype(np.float32)
        changes = {
            (content_type, f"o{i}"): [
                ChunkRow(content_type, f"o{i}", p, f"new {i}", f"n{i}.{p}", to_bytes(v))
                for p, v in enumerate([new[i], -new[i]][: 1 + i % 2])
            ]
            for i in range(30)
        }
        changes[(content_type, "o199")] = []  # Removed.
        rebuild.apply_changes(storage, state, changes, lease=None)

        assert len(calls) == 2
        (first, first_ids), (second, second_ids) = calls
        assert first != second
        assert not first_ids & second_ids
        assert first_ids | second_ids == {f"o{i}" for i in range(30)}
        # About as many rows each: 45 rows between the two writers.
        rows_of = {f"o{i}": 1 + i % 2 for i in range(30)}
        sizes = [sum(rows_of[i] for i in ids) for ids in (first_ids, second_ids)]
        assert abs(sizes[0] - sizes[1]) <= 2
        state = storage.state()
        assert state.chunk_count == storage.chunks(state.active_build).count() == 214
        assert state.object_count == 199
        hits = storage.search(state, new[7], 1)
        assert hits[0].object_id == "o7" and hits[0].text == "new 7"
    finally:
        storage._drop_hnsw_indexes(keep="")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_writer_waits_for_another_writing_the_same_object(content_type):
    import threading

    from django.db import connections

    from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

    rng = np.random.default_rng(6)
    storage = PgvectorStorage("pgvector.locks")
    try:
        state = fill(storage, content_type, rng.standard_normal((20, 16)))
        locked, release, done = threading.Event(), threading.Event(), threading.Event()

        def hold():
            try:
                with transaction.atomic():
                    storage._lock_objects([(content_type, "o3")])
                    locked.set()
                    release.wait(20)
            finally:
                connections["default"].close()

        def write():
            try:
                vector = rng.standard_normal(16).astype(np.float32)
                storage.apply_changes(
                    storage.state(),
                    {
                        (content_type, "o3"): [
                            ChunkRow(content_type, "o3", 0, "x", "x", to_bytes(vector))
                        ]
                    },
                )
                done.set()
            finally:
                connections["default"].close()

        holder = threading.Thread(target=hold)
        holder.start()
        assert locked.wait(20)
        writer = threading.Thread(target=write)
        writer.start()
        assert not done.wait(1.0)  # Waiting for the object's lock.
        release.set()
        holder.join(20)
        writer.join(20)
        assert done.is_set()
        state = storage.state()
        assert state.chunk_count == 20 == storage.chunks(state.active_build).count()
    finally:
        storage._drop_hnsw_indexes(keep="")
