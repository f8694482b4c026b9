"""One suite for every storage: what the ``VectorStorage`` protocol promises.

Each test runs against every storage this run can reach, through the
protocol's methods only (never a storage's own table or client):

- ``database``: the default storage (always);
- ``qdrant-memory``: Qdrant's local mode, ``LOCATION: ":memory:"`` (always;
  needs qdrant-client, part of the ``test`` extra);
- ``qdrant-server``: a Qdrant server at ``QDRANT_URL`` (``QDRANT_API_KEY``
  if it needs one), when that is set;
- ``pgvector``: under ``--ds=tests.settings_postgres``.

Storages are made by ``get_storage`` from ``WAGTAIL_VECTOR_INDEX["STORAGE"]``,
as an index makes them, and each test makes more than one instance of its
index's storage: they must all see the same data.
"""

from __future__ import annotations

import os
import random
import uuid

import numpy as np
import pytest
from django.conf import settings as django_settings

from tests.storage import brute_force, fill, unit
from wagtail_vector_index.index.storage import (
    ChunkRow,
    InvalidVectorError,
    Where,
    get_storage,
    to_bytes,
)

pytestmark = pytest.mark.django_db

QDRANT = "wagtail_vector_index.index.storage.qdrant.QdrantStorage"
SERVER_REASON = (
    "set QDRANT_URL to run these against a Qdrant server, e.g. "
    "`docker run -p 6333:6333 qdrant/qdrant` and QDRANT_URL=http://127.0.0.1:6333"
)
STORAGES = ["database", "qdrant-memory", "qdrant-server", "pgvector"]


def _qdrant_config(kind: str, prefix: str) -> dict:
    if kind == "qdrant-memory":
        return {"LOCATION": ":memory:", "COLLECTION_PREFIX": prefix}
    config = {"URL": os.environ["QDRANT_URL"], "COLLECTION_PREFIX": prefix}
    if os.environ.get("QDRANT_API_KEY"):
        config["API_KEY"] = os.environ["QDRANT_API_KEY"]
    return config


@pytest.fixture(params=STORAGES)
def make_storage(request, settings):
    """A function making the storage under test for an index name, as
    ``get_storage`` does."""
    kind = request.param
    pgvector = getattr(django_settings, "WVI_TEST_STORAGE", None)
    if kind == "pgvector" and not pgvector:
        pytest.skip("pgvector: run with --ds=tests.settings_postgres")
    if kind == "database" and pgvector:
        # The suite on PostgreSQL: the default storage there too.
        settings.WAGTAIL_VECTOR_INDEX = {}
    elif kind == "pgvector":
        settings.WAGTAIL_VECTOR_INDEX = {"STORAGE": pgvector}
    elif kind.startswith("qdrant"):
        pytest.importorskip("qdrant_client")
        if kind == "qdrant-server" and not os.environ.get("QDRANT_URL"):
            pytest.skip(SERVER_REASON)
        # A prefix per test: tests never see each other's collections (the
        # database is rolled back after each test, Qdrant is not).
        prefix = f"wvitest{uuid.uuid4().hex[:10]}"
        settings.WAGTAIL_VECTOR_INDEX = {
            "STORAGE": {"CLASS": QDRANT, "CONFIG": _qdrant_config(kind, prefix)}
        }
    made = []

    def make(index_name: str):
        storage = get_storage(index_name)
        made.append(storage)
        return storage

    yield make
    if kind.startswith("qdrant"):
        for storage in made:
            for build in storage.builds():
                storage._drop_collection(build)


def _vectors(seed: int, count: int = 40, dimensions: int = 16) -> np.ndarray:
    return (
        np.random.default_rng(seed)
        .standard_normal((count, dimensions))
        .astype(np.float32)
    )


def _row(content_type, object_id, position, vector, *, text=None, content_hash=None):
    return ChunkRow(
        content_type,
        str(object_id),
        position,
        text if text is not None else f"text {object_id}#{position}",
        content_hash or f"hash-{object_id}-{position}-{vector[:2].tobytes().hex()}",
        to_bytes(vector),
    )


def _ids(hits):
    return [hit.object_id for hit in hits]


# -- writing, activating, searching -------------------------------------------


def test_search_orders_by_cosine_similarity_with_exact_scores(
    make_storage, content_type
):
    vectors = _vectors(1)
    state = fill(make_storage("contract.search"), content_type, vectors)
    query = np.random.default_rng(2).standard_normal(16)

    hits = make_storage("contract.search").search(state, query, 10)

    ids, scores = brute_force(vectors, query, 10)
    assert _ids(hits) == ids
    assert [hit.score for hit in hits] == pytest.approx(scores, abs=1e-5)
    assert all(hit.content_type_id == content_type for hit in hits)
    assert hits[0].text == f"text {ids[0]}" and hits[0].position == 0


def test_activate_records_the_state(make_storage, content_type):
    storage = make_storage("contract.state")
    assert storage.state() is None
    build = storage.next_build()
    storage.write_build(
        build,
        [
            _row(content_type, "a", 0, np.ones(8, np.float32)),
            _row(content_type, "a", 1, np.arange(8, dtype=np.float32)),
            _row(content_type, "b", 0, -np.ones(8, np.float32)),
        ],
    )
    state = storage.activate(
        build, model_id="m-1", dimensions=8, object_count=2, chunking="sig"
    )

    again = make_storage("contract.state").state()
    assert (again.model_id, again.dimensions, again.active_build) == ("m-1", 8, build)
    assert (again.chunk_count, again.object_count, again.chunking) == (3, 2, "sig")
    assert again.revision == state.revision


def test_limit_zero_and_an_empty_index_find_nothing(make_storage, content_type):
    storage = make_storage("contract.empty")
    state = fill(storage, content_type, np.zeros((0, 8), dtype=np.float32))
    assert storage.search(state, np.ones(8), 5) == []
    full = fill(make_storage("contract.nonempty"), content_type, _vectors(3))
    assert make_storage("contract.nonempty").search(full, np.ones(16), 0) == []


def test_keys_return_the_best_limit_within_them(make_storage, content_type):
    vectors = _vectors(4)
    storage = make_storage("contract.keys")
    state = fill(storage, content_type, vectors)
    query = np.random.default_rng(5).standard_normal(16)
    ranking, _ = brute_force(vectors, query, len(vectors))
    # The seven objects ranked lowest overall: a filter applied after a
    # search of the best few would find none of them.
    allowed = ranking[-7:]
    keys = {(content_type, object_id) for object_id in allowed}

    hits = storage.search(state, query, 3, keys=keys)

    assert _ids(hits) == allowed[:3]
    assert storage.search(state, query, 3, keys=set()) == []
    assert storage.search(state, query, 3, keys={(content_type, "nope")}) == []
    everything = storage.search(state, query, 100, keys=keys)
    assert _ids(everything) == allowed


def test_a_query_of_other_dimensions_is_refused(make_storage, content_type):
    storage = make_storage("contract.query")
    state = fill(storage, content_type, _vectors(6))
    with pytest.raises(InvalidVectorError):
        storage.search(state, np.ones(15), 3)
    with pytest.raises(InvalidVectorError):
        storage.search(state, np.full(16, np.nan), 3)


# -- builds ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [np.ones(15, np.float32), np.full(16, np.nan, np.float32), np.full(16, np.inf)],
    ids=["dimensions", "nan", "inf"],
)
def test_invalid_vectors_are_refused_and_the_index_keeps_answering(
    make_storage, content_type, bad
):
    vectors = _vectors(7)
    storage = make_storage("contract.invalid")
    state = fill(storage, content_type, vectors)
    query = vectors[3]
    before = storage.search(state, query, 5)

    build = storage.next_build()
    rows = [_row(content_type, f"n{i}", 0, vectors[i]) for i in range(3)]
    rows.append(_row(content_type, "bad", 0, bad))
    with pytest.raises(InvalidVectorError):
        storage.write_build(build, rows, dimensions=16)
    with pytest.raises(InvalidVectorError):
        storage.apply_changes(
            state,
            {
                (content_type, "o1"): [_row(content_type, "o1", 0, vectors[9])],
                (content_type, "o2"): [_row(content_type, "o2", 0, bad)],
            },
        )

    after = make_storage("contract.invalid")
    fresh = after.state()
    assert fresh.active_build == state.active_build
    assert (fresh.chunk_count, fresh.object_count) == (40, 40)
    assert after.search(fresh, query, 5) == before
    # Nothing of the refused change was written: o1 kept its vector.
    [vector] = after.object_vectors(fresh, content_type, "o1")
    assert _cosine(vector, vectors[1]) == pytest.approx(1.0, abs=1e-5)
    # The refused build's rows were not written either: none is reusable.
    hashes = [row.content_hash for row in rows]
    assert after.vectors_by_hash(fresh, hashes, builds=(build,)) == {}


def test_a_half_written_build_never_answers(make_storage, content_type):
    vectors = _vectors(8)
    storage = make_storage("contract.half")
    state = fill(storage, content_type, vectors)
    query = vectors[0]
    before = storage.search(state, query, 5)

    build = storage.next_build()
    assert build > state.active_build
    storage.write_build(
        build, [_row(content_type, "new", 0, vectors[0], content_hash="new-hash")]
    )

    other = make_storage("contract.half")
    assert other.state().active_build == state.active_build
    assert other.search(other.state(), query, 5) == before
    assert "new" not in _ids(other.search(other.state(), query, 50))
    # Readable for reuse by the update writing it...
    assert set(other.vectors_by_hash(state, ["new-hash"], builds=(build,))) == {
        "new-hash"
    }
    # ...and cleared by the next one: an interrupted run leaves nothing.
    later = other.next_build()
    assert later > state.active_build
    assert other.vectors_by_hash(state, ["new-hash"], builds=(build,)) == {}
    assert other.search(other.state(), query, 5) == before


def test_activating_a_new_build_replaces_the_old_one(make_storage, content_type):
    storage = make_storage("contract.rebuild")
    first = fill(storage, content_type, _vectors(9), prefix="old")
    second = fill(
        make_storage("contract.rebuild"), content_type, _vectors(10, 5), prefix="new"
    )

    assert second.active_build > first.active_build
    assert (second.chunk_count, second.object_count) == (5, 5)
    hits = make_storage("contract.rebuild").search(second, np.ones(16), 50)
    assert sorted(_ids(hits)) == [f"new{i}" for i in range(5)]


def test_next_build_reserves_the_number_on_a_lease(make_storage, content_type):
    from wagtail_vector_index.index.lease import IndexLease

    storage = make_storage("contract.lease")
    state = fill(storage, content_type, _vectors(11, 3))
    lease = IndexLease("contract.lease")
    assert lease.try_acquire()
    try:
        first = storage.next_build(lease=lease)
        second = storage.next_build(lease=lease)
    finally:
        lease.release()
    assert state.active_build < first < second


# -- changing objects in place ---------------------------------------------------


def test_apply_changes_replaces_adds_and_removes_objects(make_storage, content_type):
    vectors = _vectors(12, 10)
    storage = make_storage("contract.changes")
    state = fill(storage, content_type, vectors)
    revision = state.revision
    replacement = _vectors(13, 3)

    state = storage.apply_changes(
        state,
        {
            # o1: one chunk becomes three.
            (content_type, "o1"): [
                _row(content_type, "o1", i, replacement[i]) for i in range(3)
            ],
            # o2: removed.
            (content_type, "o2"): [],
            # fresh: a new object.
            (content_type, "fresh"): [_row(content_type, "fresh", 0, vectors[5])],
            # gone: removing an object that is not there changes nothing.
            (content_type, "gone"): [],
        },
    )

    assert (state.chunk_count, state.object_count) == (10 + 2 - 1 + 1, 10)
    assert state.revision != revision
    other = make_storage("contract.changes")
    fresh = other.state()
    assert (fresh.chunk_count, fresh.object_count) == (12, 10)
    hits = other.search(fresh, replacement[2], 3, keys={(content_type, "o1")})
    assert [(hit.object_id, hit.position) for hit in hits][0] == ("o1", 2)
    assert sorted(hit.position for hit in hits) == [0, 1, 2]
    assert other.search(fresh, vectors[2], 5, keys={(content_type, "o2")}) == []
    assert _ids(other.search(fresh, vectors[5], 2))[:2] in (
        ["o5", "fresh"],
        ["fresh", "o5"],
    )
    stored = other.object_vectors(fresh, content_type, "o1")
    assert [_cosine(a, b) for a, b in zip(stored, replacement, strict=True)] == (
        pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    )
    assert other.object_vectors(fresh, content_type, "o2") == []


def test_apply_changes_shrinks_an_object(make_storage, content_type):
    storage = make_storage("contract.shrink")
    build = storage.next_build()
    vectors = _vectors(14, 4, 8)
    storage.write_build(
        build, [_row(content_type, "x", i, vectors[i]) for i in range(4)]
    )
    state = storage.activate(build, model_id="m", dimensions=8, object_count=1)

    state = storage.apply_changes(
        state, {(content_type, "x"): [_row(content_type, "x", 0, vectors[3])]}
    )

    assert (state.chunk_count, state.object_count) == (1, 1)
    hits = storage.search(state, vectors[0], 10)
    assert [(hit.object_id, hit.position) for hit in hits] == [("x", 0)]
    assert len(storage.object_vectors(state, content_type, "x")) == 1


def test_replace_object_swaps_one_object(make_storage, content_type):
    vectors = _vectors(15, 6)
    storage = make_storage("contract.replace")
    state = fill(storage, content_type, vectors)
    target = -vectors[0]

    storage.replace_object(
        state,
        content_type,
        "o3",
        [_row(content_type, "o3", 0, target, text="replaced")],
    )

    fresh = make_storage("contract.replace").state()
    assert (fresh.chunk_count, fresh.object_count) == (6, 6)
    [hit] = make_storage("contract.replace").search(fresh, target, 1)
    assert (hit.object_id, hit.text) == ("o3", "replaced")
    assert hit.score == pytest.approx(1.0, abs=1e-5)


def test_touch_keeps_the_revision(make_storage, content_type):
    storage = make_storage("contract.touch")
    state = fill(storage, content_type, _vectors(16, 2))
    storage.touch(state)
    assert storage.state().revision == state.revision


# -- reading back ------------------------------------------------------------------


def test_inspect_counts_keys_and_reusable_hashes(make_storage, content_type):
    storage = make_storage("contract.inspect")
    assert not storage.inspect(None).keys
    build = storage.next_build()
    vectors = _vectors(17, 3, 8)
    rows = [
        _row(content_type, "a", 0, vectors[0], content_hash="h0"),
        _row(content_type, "a", 1, vectors[1], content_hash="h1"),
        _row(content_type, "b", 0, vectors[2], content_hash="h2"),
    ]
    storage.write_build(build, rows)
    state = storage.activate(build, model_id="m", dimensions=8, object_count=2)

    found = make_storage("contract.inspect").inspect(state)

    assert dict(found.keys) == {
        (content_type, "a", 0, "h0"): 1,
        (content_type, "a", 1, "h1"): 1,
        (content_type, "b", 0, "h2"): 1,
    }
    assert found.hashes == {"h0", "h1", "h2"}
    assert (found.invalid, found.invalid_objects) == (0, set())


def test_vectors_by_hash_are_reused_unchanged(make_storage, content_type):
    vectors = _vectors(18, 12)
    storage = make_storage("contract.reuse")
    state = fill(storage, content_type, vectors)
    hashes = [key[3] for key in storage.inspect(state).keys]

    known = make_storage("contract.reuse").vectors_by_hash(state, hashes)

    assert set(known) == set(hashes)
    assert storage.vectors_by_hash(state, []) == {}
    assert storage.vectors_by_hash(None, hashes) == {}
    # Handed back to the same storage as they are, they search the same.
    build = storage.next_build()
    by_object = {key[1]: key[3] for key in storage.inspect(state).keys}
    storage.write_build(
        build,
        (
            ChunkRow(
                content_type, object_id, 0, "reused", content_hash, known[content_hash]
            )
            for object_id, content_hash in by_object.items()
        ),
        dimensions=16,
    )
    rebuilt = storage.activate(build, model_id="m", dimensions=16, object_count=12)
    query = np.random.default_rng(19).standard_normal(16)
    ids, scores = brute_force(vectors, query, 12)
    hits = storage.search(rebuilt, query, 12)
    assert _ids(hits) == ids
    assert [hit.score for hit in hits] == pytest.approx(scores, abs=1e-5)


def test_object_vectors_come_back_in_order_as_float32(make_storage, content_type):
    storage = make_storage("contract.vectors")
    build = storage.next_build()
    vectors = _vectors(20, 3, 8)
    # Written out of order.
    storage.write_build(
        build, [_row(content_type, "x", i, vectors[i]) for i in (2, 0, 1)]
    )
    state = storage.activate(build, model_id="m", dimensions=8, object_count=1)

    stored = make_storage("contract.vectors").object_vectors(state, content_type, "x")

    assert [vector.dtype for vector in stored] == [np.float32] * 3
    assert [_cosine(a, b) for a, b in zip(stored, vectors, strict=True)] == (
        pytest.approx([1.0, 1.0, 1.0], abs=1e-5)
    )
    assert storage.object_vectors(state, content_type, "nobody") == []


def test_first_texts_are_the_texts_at_position_zero(make_storage, content_type):
    storage = make_storage("contract.texts")
    build = storage.next_build()
    vectors = _vectors(21, 3, 8)
    storage.write_build(
        build,
        [
            _row(content_type, "a", 0, vectors[0], text="a first"),
            _row(content_type, "a", 1, vectors[1], text="a second"),
            _row(content_type, "b", 0, vectors[2], text="b first"),
        ],
    )
    state = storage.activate(build, model_id="m", dimensions=8, object_count=2)

    texts = make_storage("contract.texts").first_texts(
        state, [(content_type, "a"), (content_type, "b"), (content_type, "c")]
    )

    assert texts == {(content_type, "a"): "a first", (content_type, "b"): "b first"}
    assert storage.first_texts(None, [(content_type, "a")]) == {}


def test_drop_forgets_every_build(make_storage, content_type):
    storage = make_storage("contract.drop")
    state = fill(storage, content_type, _vectors(22, 4))
    unfinished = storage.next_build()
    storage.write_build(
        unfinished, [_row(content_type, "u", 0, _vectors(23, 1)[0], content_hash="u")]
    )
    hashes = [key[3] for key in storage.inspect(state).keys]

    storage.drop()

    other = make_storage("contract.drop")
    assert other.state() is None
    assert other.vectors_by_hash(state, [*hashes, "u"], builds=(unfinished,)) == {}
    assert other.next_build() == 1
    fresh = fill(other, content_type, _vectors(24, 2))
    assert len(other.search(fresh, np.ones(16), 10)) == 2


def _cosine(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# -- scoped searches inside the engine (Where) -----------------------------------


def _scoped_rows(content_type, count, seed):
    """``count`` one-chunk objects with random tree paths (some not pages)
    and locales (some none), and their vectors."""
    generator = random.Random(seed)
    vectors = _vectors(seed, count, 8)
    rows = []
    for number, vector in enumerate(vectors):
        depth = generator.choice([0, 1, 2, 2, 3, 3])
        path = "".join(f"{generator.randint(1, 3):04d}" for _ in range(depth))
        rows.append(
            ChunkRow(
                content_type,
                f"o{number}",
                0,
                f"text o{number}",
                f"hash-o{number}-{seed}",
                to_bytes(vector),
                path=path,
                locale_id=generator.choice([None, 1, 2]),
            )
        )
    return rows, vectors


def _fill_rows(storage, rows, dimensions):
    build = storage.next_build()
    storage.write_build(build, rows)
    return storage.activate(
        build, model_id="m", dimensions=dimensions, object_count=len(rows)
    )


def test_every_storage_filters_scopes_in_its_engine(make_storage):
    assert make_storage("contract.where").filters_in_engine


def test_a_scoped_search_agrees_with_where_allows(make_storage, content_type):
    rows, _ = _scoped_rows(content_type, 200, 5)
    state = _fill_rows(make_storage("contract.where"), rows, 8)
    storage = make_storage("contract.where")
    prefixes = sorted(
        {row.path[: 4 * size] for row in rows for size in (1, 2) if row.path}
    )
    generator = random.Random(6)
    for _ in range(25):
        where = Where(
            paths=generator.choice([None, tuple(generator.sample(prefixes, 2))]),
            excluded_paths=tuple(generator.sample(prefixes, generator.randint(0, 2))),
            locale_id=generator.choice([None, 1, 2]),
            keys=generator.choice(
                [None, frozenset((content_type, f"o{i}") for i in range(0, 200, 3))]
            ),
        )
        expected = {
            row.object_id
            for row in rows
            if where.allows(row.path, row.locale_id)
            and (where.keys is None or (content_type, row.object_id) in where.keys)
        }
        hits = storage.search(state, np.ones(8), len(rows), where=where)
        assert sorted(_ids(hits)) == sorted(expected), where


def test_a_scoped_search_returns_the_best_within_the_scope(make_storage, content_type):
    rows, vectors = _scoped_rows(content_type, 300, 9)
    state = _fill_rows(make_storage("contract.best"), rows, 8)
    where = Where(paths=("0001",), locale_id=1)
    allowed = [i for i, row in enumerate(rows) if where.allows(row.path, row.locale_id)]
    query = np.random.default_rng(10).standard_normal(8)

    hits = make_storage("contract.best").search(state, query, 5, where=where)

    scores = unit(vectors[allowed].astype(np.float64)) @ unit(query)
    best = np.argsort(-scores, kind="stable")[:5]
    assert _ids(hits) == [f"o{allowed[i]}" for i in best]
    assert [hit.score for hit in hits] == pytest.approx(scores[best], abs=1e-5)


def test_inspect_reports_the_stored_scope_attributes(make_storage, content_type):
    rows, _ = _scoped_rows(content_type, 20, 11)
    state = _fill_rows(make_storage("contract.attributes"), rows, 8)
    attributes = make_storage("contract.attributes").inspect(state).attributes
    assert attributes == {
        (content_type, row.object_id): (row.path, row.locale_id) for row in rows
    }
