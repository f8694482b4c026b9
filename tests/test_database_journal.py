"""The default storage follows an index's changes through the journal
(``IndexChange``) instead of reloading every vector, in another process as
well as in this one.

"Another process" is a storage with a cache and a lock of its own here, and a
real process (tests/journal_worker.py) in the last tests.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.storage import fill, unit
from wagtail_vector_index.index.storage import ChunkRow, DatabaseStorage, to_bytes
from wagtail_vector_index.index.storage import database as database_storage
from wagtail_vector_index.models import EmbeddingChunk, IndexChange, IndexState

REPOSITORY = Path(__file__).resolve().parent.parent
DIMENSIONS = 16


def process(index_name: str) -> DatabaseStorage:
    """A storage as another process holds it: its own cache and lock, and a
    count of its full loads."""
    storage = DatabaseStorage(index_name)
    storage._cache = {}
    storage._lock = threading.Lock()
    storage.loads = 0
    load = storage._load

    def counted(state):
        storage.loads += 1
        return load(state)

    storage._load = counted
    return storage


def rows(content_type, object_id, vectors, *, texts=None):
    return [
        ChunkRow(
            content_type,
            object_id,
            position,
            texts[position] if texts else f"{object_id} #{position}",
            f"{object_id}:{position}:{vector[:2].tobytes().hex()}",
            to_bytes(vector),
        )
        for position, vector in enumerate(np.atleast_2d(vectors))
    ]


def stored(storage):
    """Every row of the active build: (object id, position, text, vector)."""
    state = storage.state()
    return [
        (object_id, position, text, np.frombuffer(bytes(data), dtype=np.float32))
        for object_id, position, text, data in storage.chunks(state.active_build)
        .order_by("pk")
        .values_list("object_id", "position", "text", "vector")
    ]


def expected(storage, query, limit):
    """The best ``limit`` chunks by brute force over the database's rows."""
    found = stored(storage)
    matrix = unit(np.array([vector for *_, vector in found], dtype=np.float64))
    scores = matrix @ unit(np.asarray(query, np.float64))
    best = np.argsort(-scores, kind="stable")[:limit]
    return [found[i][:3] for i in best], [float(scores[i]) for i in best]


def assert_matches(storage, reader, query, limit=10):
    hits = reader.search(storage.state(), query, limit)
    keys, scores = expected(storage, query, limit)
    assert [(h.object_id, h.position, h.text) for h in hits] == keys
    assert np.allclose([h.score for h in hits], scores, atol=1e-5)
    return hits


@pytest.fixture
def index(content_type):
    rng = np.random.default_rng(11)
    writer = DatabaseStorage("journal.index")
    writer.forget()
    fill(writer, content_type, rng.standard_normal((40, DIMENSIONS)).astype("f4"))
    return writer, rng


pytestmark = pytest.mark.django_db


def test_changes_are_applied_without_reloading(index, content_type):
    writer, rng = index
    reader = process(writer.index_name)
    query = rng.standard_normal(DIMENSIONS)
    assert_matches(writer, reader, query)
    assert reader.loads == 1
    before = reader._cache[reader.index_name]

    new = rng.standard_normal((3, DIMENSIONS)).astype("f4")
    added = rng.standard_normal(DIMENSIONS).astype("f4")
    state = writer.apply_changes(
        writer.state(),
        {
            (content_type, "o3"): rows(content_type, "o3", new, texts=["a", "b", "c"]),
            (content_type, "o5"): [],
            (content_type, "new"): rows(content_type, "new", added),
        },
    )
    assert IndexChange.objects.filter(index_name=writer.index_name).count() == 3

    hits = assert_matches(writer, reader, added)
    assert reader.loads == 1  # Applied from the journal, not reloaded.
    assert (hits[0].object_id, hits[0].text) == ("new", "new #0")
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    for query in [*new, rng.standard_normal(DIMENSIONS)]:
        hits = assert_matches(writer, reader, query, limit=50)
    assert "o5" not in {hit.object_id for hit in reader.search(state, query, 50)}
    assert [h.text for h in reader.search(state, new[1], 1)] == ["b"]

    after = reader._cache[reader.index_name]
    assert after.rows is before.rows  # Changed in place, not copied.
    assert (after.revision, after.position) == (
        state.revision,
        IndexChange.objects.order_by("-id").first().pk,
    )
    assert after.live == 40 - 2 + 3 + 1
    assert reader.loads == 1


def test_a_copy_in_use_never_sees_a_later_change(index, content_type):
    """A search holding the older copy sees the index as it was: new rows are
    written where it does not look, and its mask is not touched."""
    writer, rng = index
    reader = process(writer.index_name)
    query = rng.standard_normal(DIMENSIONS)
    old_hits = reader.search(writer.state(), query, 5)
    old = reader._cache[reader.index_name]
    old_matrix = old.matrix.copy()
    old_best = reader._best(old, to_bytes(query), 5, None)

    best = old_hits[0].object_id
    writer.apply_changes(
        writer.state(),
        {
            (content_type, best): rows(content_type, best, -query),
            (content_type, "extra"): rows(content_type, "extra", query),
        },
    )
    reader.search(writer.state(), query, 5)
    new = reader._cache[reader.index_name]
    assert new is not old and new.rows is old.rows and new.count == old.count + 2
    assert old.alive is None and np.array_equal(old.matrix, old_matrix)
    assert reader._best(old, to_bytes(query), 5, None) == old_best
    assert reader._best(new, to_bytes(query), 1, None)[0][0] == old.count + 1


@pytest.mark.parametrize("indexed_before", [False, True])
def test_filtered_searches_after_changes(index, content_type, indexed_before):
    """Rows by object are looked up in an index built on the first filtered
    search and kept up to date by later changes."""
    writer, rng = index
    reader = process(writer.index_name)
    some = [(content_type, "o1")] if indexed_before else None
    reader.search(writer.state(), rng.standard_normal(DIMENSIONS), 5, keys=some)
    assert (reader._cache[reader.index_name].rows._by_key is None) != indexed_before
    writer.apply_changes(
        writer.state(),
        {
            (content_type, "o1"): rows(
                content_type, "o1", rng.standard_normal((2, DIMENSIONS))
            ),
            (content_type, "o2"): [],
        },
    )
    query = rng.standard_normal(DIMENSIONS)
    for keys in ([(content_type, "o1"), (content_type, "o2")], None):
        few = keys or [(content_type, f"o{i}") for i in range(30)]
        hits = reader.search(writer.state(), query, 10, keys=few)
        wanted = {object_id for _, object_id in few}
        found, _ = expected(writer, query, 100)
        assert [(h.object_id, h.position) for h in hits] == [
            (object_id, position)
            for object_id, position, _ in found
            if object_id in wanted
        ][:10]
    assert reader.loads == 1


def test_a_new_build_reloads_everything(index, content_type):
    writer, rng = index
    reader = process(writer.index_name)
    reader.search(writer.state(), rng.standard_normal(DIMENSIONS), 5)
    writer.apply_changes(writer.state(), {(content_type, "o1"): []})
    assert IndexChange.objects.filter(index_name=writer.index_name).exists()

    fill(writer, content_type, rng.standard_normal((7, DIMENSIONS)).astype("f4"))
    assert not IndexChange.objects.filter(index_name=writer.index_name).exists()
    assert_matches(writer, reader, rng.standard_normal(DIMENSIONS))
    assert reader.loads == 2
    assert reader._cache[reader.index_name].live == 7


def test_a_dropped_index_loses_its_journal(index, content_type):
    writer, rng = index
    writer.apply_changes(writer.state(), {(content_type, "o1"): []})
    writer.drop()
    assert not IndexChange.objects.filter(index_name=writer.index_name).exists()


def test_a_pruned_journal_reloads_everything(index, content_type, monkeypatch):
    writer, rng = index
    writer.journal_keep = 3
    monkeypatch.setattr(database_storage, "PRUNE_SLACK", 2)
    behind = process(writer.index_name)
    close = process(writer.index_name)
    query = rng.standard_normal(DIMENSIONS)
    behind.search(writer.state(), query, 5)

    for number in range(6):
        object_id = f"o{number}"
        vector = rng.standard_normal(DIMENSIONS)
        state = writer.apply_changes(
            writer.state(),
            {(content_type, object_id): rows(content_type, object_id, vector)},
        )
        if number == 3:
            close.search(state, query, 5)
    ids = list(
        IndexChange.objects.filter(index_name=writer.index_name)
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert len(ids) == 3  # Pruned to the newest 3 when 3 + 2 were passed.
    assert state.journal_floor == IndexState.objects.get().journal_floor
    assert ids[0] > state.journal_floor > 0

    assert_matches(writer, close, query)
    assert close.loads == 1  # Its position was kept: applied from the journal.
    assert_matches(writer, behind, query)
    assert behind.loads == 2  # Its position was pruned away: reloaded.


def test_a_gap_in_the_journal_reloads_everything(index, content_type):
    """Entries that went missing (or a change committed out of order) break
    the chain of revisions: the copy is reloaded, never left behind."""
    writer, rng = index
    reader = process(writer.index_name)
    query = rng.standard_normal(DIMENSIONS)
    reader.search(writer.state(), query, 5)
    writer.apply_changes(
        writer.state(), {(content_type, "o1"): rows(content_type, "o1", query)}
    )
    writer.apply_changes(writer.state(), {(content_type, "o2"): []})
    IndexChange.objects.filter(object_id="o1").delete()
    assert_matches(writer, reader, query)
    assert reader.loads == 2


def test_a_change_committed_out_of_order_is_not_missed(index, content_type):
    """Change A gets the lower id but commits after change B, which a reader
    has already applied (impossible while apply_changes locks the state row;
    simulated by moving the ids): the reader still sees A."""
    writer, rng = index
    reader = process(writer.index_name)
    query = rng.standard_normal(DIMENSIONS)
    reader.search(writer.state(), query, 5)
    writer.apply_changes(writer.state(), {(content_type, "o2"): []})  # B
    b = IndexChange.objects.get(object_id="o2")
    IndexChange.objects.filter(pk=b.pk).update(id=b.pk + 10)
    assert_matches(writer, reader, query)  # B applied; position b + 10.
    assert reader.loads == 1

    writer.apply_changes(  # A, then given an id below B's.
        writer.state(), {(content_type, "o1"): rows(content_type, "o1", query)}
    )
    IndexChange.objects.filter(object_id="o1").update(id=b.pk + 5)
    hits = assert_matches(writer, reader, query)
    assert hits[0].object_id == "o1"
    assert reader.loads == 2


def test_a_revision_moved_without_the_journal_reloads_everything(index, content_type):
    writer, rng = index
    reader = process(writer.index_name)
    query = rng.standard_normal(DIMENSIONS)
    reader.search(writer.state(), query, 5)
    EmbeddingChunk.objects.filter(object_id="o4").update(vector=to_bytes(query))
    IndexState.objects.update(revision="changed-by-hand")
    assert reader.search(writer.state(), query, 1)[0].object_id == "o4"
    assert reader.loads == 2


def test_an_older_state_than_the_copy_is_no_reason_to_reload(index, content_type):
    writer, rng = index
    reader = process(writer.index_name)
    old_state = writer.state()
    reader.search(old_state, rng.standard_normal(DIMENSIONS), 5)
    writer.apply_changes(writer.state(), {(content_type, "o1"): []})
    reader.search(writer.state(), rng.standard_normal(DIMENSIONS), 5)
    reader.search(old_state, rng.standard_normal(DIMENSIONS), 5)  # Another thread's.
    assert reader.loads == 1


def test_a_change_during_the_sync_is_caught_up(index, content_type, monkeypatch):
    """A change committed while a copy is being synced: the copy is synced
    again at once (the revision read after differs from the one before)."""
    writer, rng = index
    reader = process(writer.index_name)
    query = rng.standard_normal(DIMENSIONS)
    reader.search(writer.state(), query, 5)
    writer.apply_changes(writer.state(), {(content_type, "o1"): []})

    apply = reader._apply
    changed = []

    def apply_then_change(loaded, entries, state):
        result = apply(loaded, entries, state)
        if not changed:
            changed.append(True)
            writer.apply_changes(
                writer.state(),
                {(content_type, "o2"): rows(content_type, "o2", query)},
            )
        return result

    monkeypatch.setattr(reader, "_apply", apply_then_change)
    hits = assert_matches(writer, reader, query)
    assert hits[0].object_id == "o2"
    copy = reader._cache[reader.index_name]
    assert copy.exact and copy.revision == writer.state().revision
    assert reader.loads == 1


def test_a_hit_whose_row_was_replaced_meanwhile(index, content_type):
    """The copy is made, then the row behind a hit is replaced before its
    text is read: the search runs again on the index as it is now."""
    writer, rng = index
    reader = process(writer.index_name)
    query = rng.standard_normal(DIMENSIONS)
    state = writer.state()
    best = reader.search(state, query, 1)[0].object_id
    # Rows replaced behind the copy's back (the revision the caller holds is
    # the old one: the copy matches it).
    writer.apply_changes(
        writer.state(), {(content_type, best): rows(content_type, best, query)}
    )
    hits = reader.search(state, query, 3)
    assert hits[0].object_id == best and hits[0].score == pytest.approx(1.0)
    assert len(hits) == 3


def test_compaction_when_dead_rows_pile_up(index, content_type, monkeypatch):
    writer, rng = index
    monkeypatch.setattr(database_storage, "_headroom", lambda rows: 4)
    reader = process(writer.index_name)
    query = rng.standard_normal(DIMENSIONS)
    reader.search(writer.state(), query, 5)
    first = reader._cache[reader.index_name].rows
    buffers = {id(first)}
    for number in range(12):
        object_id = f"o{number}"
        writer.apply_changes(
            writer.state(),
            {
                (content_type, object_id): rows(
                    content_type, object_id, rng.standard_normal(DIMENSIONS)
                )
            },
        )
        assert_matches(writer, reader, query)
        hits = reader.search(writer.state(), query, 3, keys=[(content_type, object_id)])
        assert [h.object_id for h in hits] == [object_id]
        buffers.add(id(reader._cache[reader.index_name].rows))
    copy = reader._cache[reader.index_name]
    assert 1 < len(buffers) < 12  # Compacted now and then, not every time.
    assert copy.live == 40 and copy.count - copy.live <= 0.1 * copy.count + 1
    assert reader.loads == 1


def test_invalid_rows_in_a_change_are_left_out(index, content_type, caplog):
    writer, rng = index
    reader = process(writer.index_name)
    query = rng.standard_normal(DIMENSIONS)
    reader.search(writer.state(), query, 5)
    writer.apply_changes(
        writer.state(),
        {
            (content_type, "o1"): rows(
                content_type, "o1", rng.standard_normal((2, DIMENSIONS))
            )
        },
    )
    bad = np.full(DIMENSIONS, np.nan, dtype=np.float32).tobytes()
    EmbeddingChunk.objects.filter(object_id="o1", position=1).update(vector=bad)
    with caplog.at_level("WARNING"):
        hits = reader.search(writer.state(), query, 100)
    assert "1 stored vectors do not fit" in caplog.text
    assert [h.position for h in hits if h.object_id == "o1"] == [0]
    assert len(hits) == 40 and reader.loads == 1


# -- real processes ----------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    database = str(tmp_path_factory.mktemp("journal") / "site.sqlite3")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_subprocess",
        "WVI_TEST_DATABASE": database,
        "WVI_TEST_PROVIDER": "http://127.0.0.1:9",  # Never called.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    env.pop("WVI_POSTGRES_URL", None)
    subprocess.run(
        [sys.executable, "tests/manage.py", "migrate", "--verbosity=0"],
        cwd=REPOSITORY,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    # Readers and the writer side by side, as on a site's database file.
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA journal_mode=WAL")
    return env


class Worker:
    def __init__(self, env):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.journal_worker"],
            cwd=REPOSITORY,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def __call__(self, op, **arguments):
        self.process.stdin.write(json.dumps({"op": op, **arguments}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the worker ended (exit {self.process.poll()})"
        return json.loads(line)

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.mark.django_db(databases=[])
def test_another_process_applies_changes_while_it_searches(site):
    writer, reader = Worker(site), Worker(site)
    try:
        writer("fill", count=3_000, dimensions=DIMENSIONS)
        first = reader("search")
        assert first["problem"] is None and first["loads"] == 1
        assert first["hits"][0][:3] == ["gen0", 0, "text gen0"]

        # Searches in three threads of the reader while the writer publishes.
        reader("start", threads=3)
        for generation in range(1, 41):
            others = [f"o{(generation * 7 + k) % 3_000}" for k in range(3)]
            searched = reader("count")["searches"]
            writer("apply", generation=generation, others=others)
            # Each publish is followed by a search that began after it
            # (whatever the machine's load): the reader searches between
            # the writer's changes, not only before or after them all.
            deadline = time.monotonic() + 30
            while reader("count")["searches"] < searched + 3:
                assert time.monotonic() < deadline, "the reader stopped searching"
                time.sleep(0.005)
        stopped = reader("stop")
        assert stopped["problems"] == []
        assert stopped["searches"] > 40
        # A hit whose row was replaced meanwhile makes its search run again
        # (how often depends on the machine's load): never every search.
        assert stopped["vanished"] < stopped["searches"]

        last = reader("search")
        assert last["problem"] is None
        assert last["hits"][0][:3] == ["gen40", 0, "text gen40"]
        # Every change came through the journal: never a full reload.
        assert last["loads"] == 1
    finally:
        writer.close()
        reader.close()


def test_rows_written_by_an_attempt_not_kept_leave_no_trace():
    """A sync that failed after writing rows past the copy's count: the next
    one writes over them, and the rows by object forget the first ones."""
    from wagtail_vector_index.index.storage.database import _Loaded, _Rows

    buffer = _Rows(8, 2)
    buffer.put(
        0, [(1, 5, "a", 0, "", None), (2, 5, "b", 0, "", None)], np.eye(2, dtype="f4")
    )
    copy = _Loaded(
        state_id=1, revision="r", build=1, position=0, rows=buffer, count=2, alive=None
    )
    assert copy.rows_for([(5, "a")]).tolist() == [0]  # Builds the index.
    buffer.put(
        2, [(3, 5, "c", 0, "", None), (4, 5, "a", 1, "", None)], np.eye(2, dtype="f4")
    )  # Dropped.
    buffer.put(2, [(5, 5, "d", 0, "", None)], np.eye(2, dtype="f4")[:1])
    assert buffer._by_key == {(5, "a"): [0], (5, "b"): [1], (5, "c"): [], (5, "d"): [2]}
    later = _Loaded(
        state_id=1, revision="s", build=1, position=1, rows=buffer, count=3, alive=None
    )
    assert later.rows_for([(5, "a"), (5, "c"), (5, "d")]).tolist() == [0, 2]
    assert copy.rows_for([(5, "d")]).tolist() == []
    assert buffer.object_ids == ["a", "b", "d"] and buffer.pks[:3].tolist() == [1, 2, 5]
