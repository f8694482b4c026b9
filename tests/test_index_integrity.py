"""Indexes hold only sound vectors, and are updated by one process at a time.

Runs on SQLite (the default storage) and, in the PostgreSQL run, on pgvector
(``WVI_TEST_STORAGE``): see tests/settings_postgres.py.
"""

import socket
import subprocess
import sys
import time
from datetime import timedelta

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DataError, connection, transaction
from django.test import override_settings
from django.utils import timezone
from wagtail.models import Page

from tests.storage import chunk_model, fill
from tests.testapp.models import ArticlePage
from tests.utils import ARTICLES, ECHO, OFFLINE
from wagtail_vector_index.ai_utils.backends.offline import HashingEmbeddingBackend
from wagtail_vector_index.index import (
    IndexLeaseLostError,
    IndexUpdateInProgressError,
    InvalidVectorError,
)
from wagtail_vector_index.index.lease import IndexLease, holder_name
from wagtail_vector_index.index.storage import ChunkRow, get_storage, to_bytes
from wagtail_vector_index.models import (
    IndexState,
    IndexUpdateLease,
    PendingIndexUpdate,
    new_revision,
)

pytestmark = pytest.mark.django_db

ON_PGVECTOR = bool(getattr(settings, "WVI_TEST_STORAGE", None))
INDEX = "testapp.articlepage"
#: More than pgvector can give an HNSW index: then nothing stops a row of
#: other dimensions from being stored in the active build (with an HNSW index
#: PostgreSQL refuses it), which is what vectors stored before the checks
#: look like.
WIDE = 2048
WIDE_SETTINGS = {
    **OFFLINE,
    "EMBEDDING_BACKENDS": {
        "default": {
            "CLASS": f"{ECHO}.HashingEmbeddingBackend",
            "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": WIDE},
        }
    },
}


@pytest.fixture(autouse=True)
def offline():
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        yield


@pytest.fixture
def home():
    root = Page.get_first_root_node()
    return root.add_child(instance=Page(title="Home", slug="integrity-home"))


@pytest.fixture
def articles(home):
    return {
        title: home.add_child(
            instance=ArticlePage(title=title, body=f"<p>{body}</p>", intro="")
        )
        for title, body in ARTICLES.items()
    }


@pytest.fixture
def embedded(monkeypatch):
    """Every text the embedding backend is asked for, in order."""
    texts = []
    real = HashingEmbeddingBackend.embed

    def embed(self, inputs, **kwargs):
        texts.extend(inputs)
        return real(self, inputs, **kwargs)

    monkeypatch.setattr(HashingEmbeddingBackend, "embed", embed)
    return texts


def invalid_rows(storage):
    """Rows of any build of the index whose vectors do not fit it."""
    state = storage.state()
    rows = storage.model.objects.filter(index_name=storage.index_name)
    return [
        data
        for (data,) in storage._vector_rows(rows, [])
        if storage.vector_problem(data, state.dimensions)
    ]


def set_vector(obj, values):
    """Write a vector straight into the active build, as a bug (or an
    unchecked provider reply) before this release could have."""
    rows = chunk_model().objects.filter(index_name=INDEX, object_id=str(obj.pk))
    vector = np.asarray(values, dtype=np.float32)
    if ON_PGVECTOR:
        rows.update(embedding=vector.tolist())
    else:
        rows.update(vector=vector.tobytes())
    # As replace_object does: processes holding the index reload it.
    IndexState.objects.filter(index_name=INDEX).update(revision=new_revision())


def rows(content_type, vectors, prefix="n"):
    return [
        ChunkRow(content_type, f"{prefix}{i}", 0, "text", f"h{prefix}{i}", vector)
        for i, vector in enumerate(vectors)
    ]


# -- item 1: storages refuse vectors that do not fit ----------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.ones(7, dtype=np.float32), "has 7 dimensions; the index has 8"),
        (np.ones(9, dtype=np.float32), "has 9 dimensions; the index has 8"),
        (np.array([1, np.nan, 0, 0, 0, 0, 0, 0], np.float32), "NaN or infinite"),
        (np.array([1, 0, 0, -np.inf, 0, 0, 0, 0], np.float32), "NaN or infinite"),
        (np.array([], np.float32), "has no values"),
        (b"\x00\x00\x80?\x00", "not a whole number of float32 values"),
    ],
)
def test_write_build_refuses_vectors_that_do_not_fit(content_type, bad, message):
    rng = np.random.default_rng(3)
    storage = get_storage("integrity.refuse")
    old = fill(storage, content_type, rng.standard_normal((6, 8)).astype(np.float32))
    vectors = [to_bytes(v) for v in rng.standard_normal((4, 8))]
    vectors.insert(2, bad if isinstance(bad, bytes) else to_bytes(bad))

    build = storage.next_build()
    with pytest.raises(InvalidVectorError, match=message) as caught:
        storage.write_build(build, rows(content_type, vectors), dimensions=8)

    assert "chunk 0 of object" in str(caught.value)
    assert "integrity.refuse" in str(caught.value)
    assert invalid_rows(storage) == []  # Nothing invalid was written.
    assert storage.state().active_build == old.active_build
    assert storage.state().revision == old.revision
    hits = storage.search(old, rng.standard_normal(8), 10)
    assert {hit.object_id for hit in hits} == {f"o{i}" for i in range(6)}


def test_without_dimensions_the_first_vector_sets_them_and_activate_checks(
    content_type,
):
    rng = np.random.default_rng(4)
    storage = get_storage("integrity.activate")
    old = fill(storage, content_type, rng.standard_normal((3, 8)).astype(np.float32))
    mixed = [to_bytes(v) for v in rng.standard_normal((2, 8))] + [to_bytes(np.ones(6))]
    with pytest.raises(InvalidVectorError, match="has 6 dimensions; the index has 8"):
        storage.write_build(storage.next_build(), rows(content_type, mixed))

    # A build written with 8 dimensions cannot be activated as 9.
    build = storage.next_build()
    storage.write_build(build, rows(content_type, mixed[:2]))
    with pytest.raises(InvalidVectorError, match="9 dimensions the build"):
        storage.activate(build, model_id="test-model", dimensions=9, object_count=2)
    state = storage.state()
    assert (state.active_build, state.dimensions) == (old.active_build, 8)
    if ON_PGVECTOR:
        assert storage.hnsw_index_name(build) not in storage.hnsw_indexes()


def test_replace_object_refuses_vectors_that_do_not_fit(content_type):
    rng = np.random.default_rng(5)
    storage = get_storage("integrity.replace")
    state = fill(storage, content_type, rng.standard_normal((4, 8)).astype(np.float32))
    before = storage.object_vectors(state, content_type, "o1")

    for bad in (np.ones(7), np.array([np.inf] + [0.0] * 7)):
        replacement = [
            ChunkRow(content_type, "o1", 0, "a", "r0", to_bytes(np.ones(8))),
            ChunkRow(content_type, "o1", 1, "b", "r1", to_bytes(bad)),
        ]
        with pytest.raises(InvalidVectorError):
            storage.replace_object(state, content_type, "o1", replacement)
    # Dimensions given explicitly win over the state's.
    with pytest.raises(InvalidVectorError, match="has 8 dimensions; the index has 4"):
        storage.replace_object(state, content_type, "o1", replacement[:1], dimensions=4)

    state.refresh_from_db()
    after = storage.object_vectors(state, content_type, "o1")
    assert [v.tolist() for v in after] == [v.tolist() for v in before]
    assert state.chunk_count == 4
    assert invalid_rows(storage) == []


@pytest.mark.skipif(not ON_PGVECTOR, reason="PostgreSQL's own refusal")
def test_pgvector_itself_refuses_nan_and_infinities(content_type):
    storage = get_storage("integrity.pg-nan")
    fill(storage, content_type, np.eye(4, dtype=np.float32))
    for value in ("NaN", "Infinity"):
        with transaction.atomic(), connection.cursor() as cursor:
            with pytest.raises(DataError, match="not allowed in vector"):
                with transaction.atomic():
                    cursor.execute(
                        f"UPDATE {storage.model._meta.db_table} "  # noqa: S608
                        f"SET embedding = '[{value},0,0,0]'"
                    )


def test_an_update_with_replies_that_do_not_fit_stores_nothing(articles, monkeypatch):
    index = ArticlePage.vector_index
    index.update()
    state = index.storage.state()
    bread = articles["Baking bread"]
    bread.body = "<p>Sourdough starter and patience.</p>"
    bread.save_revision().publish()

    # Straight from the backend, past any checks it makes of its own.
    monkeypatch.setattr(
        HashingEmbeddingBackend,
        "embed",
        lambda self, inputs, **kwargs: iter([[0.5] * 511 for _ in inputs]),
    )
    with pytest.raises(InvalidVectorError, match="has 511 dimensions"):
        index.update()
    with pytest.raises(CommandError, match="has 511 dimensions") as caught:
        call_command("update_vector_indexes", INDEX, "--noinput")
    assert "keeps answering" in str(caught.value)
    monkeypatch.undo()

    after = index.storage.state()
    assert (after.active_build, after.revision) == (state.active_build, state.revision)
    assert invalid_rows(index.storage) == []
    assert index.search("flour yeast oven", limit=1) == [bread]
    assert not IndexUpdateLease.objects.exclude(owner="").exists()  # Released.

    # A publish-time update with such replies: nothing stored.
    monkeypatch.setattr(
        HashingEmbeddingBackend,
        "embed",
        lambda self, inputs, **kwargs: iter([[float("nan")] * 512 for _ in inputs]),
    )
    with pytest.raises(InvalidVectorError, match="NaN"):
        index.update_object(bread)
    assert invalid_rows(index.storage) == []
    assert index.storage.state().revision == state.revision


# -- item 2: invalid vectors stored before are skipped, then repaired -----------


@override_settings(WAGTAIL_VECTOR_INDEX=WIDE_SETTINGS)
def test_invalid_stored_vectors_are_skipped_then_embedded_again(
    articles, embedded, caplog
):
    index = ArticlePage.vector_index
    index.update()
    bread, stars = articles["Baking bread"], articles["Watching stars"]
    texts = {
        page: chunk_model().objects.get(object_id=str(page.pk)).text
        for page in (bread, stars)
    }
    # One dimension short, as the provider once sent; and (pgvector cannot
    # hold NaN, see above) NaN or one dimension too many.
    set_vector(bread, np.full(WIDE - 1, 0.1))
    set_vector(stars, np.full(WIDE + 1, 0.1) if ON_PGVECTOR else [np.nan] * WIDE)
    storage = index.storage
    assert storage.inspect(storage.state()).invalid == 2

    # Searching and similar pages answer, without those rows, and say so once.
    with caplog.at_level("WARNING"):
        found = index.search("flour yeast oven", limit=5, similarity_threshold=-1)
        index.search("garden", limit=5)
        similar = index.find_similar(articles["Growing tomatoes"], limit=5)
    others = set(articles.values()) - {bread, stars}
    assert set(found) == others
    assert articles["Pruning roses"] in similar
    assert bread not in similar and stars not in similar
    warnings = [r for r in caplog.records if "update_vector_indexes" in r.message]
    assert len(warnings) == 1, caplog.text
    assert "2 stored vectors" in warnings[0].message
    assert index.estimate().chunks_to_embed == 2

    embedded.clear()
    report = index.update()

    assert sorted(embedded) == sorted(texts.values())  # Those chunks, no others.
    assert (report.invalid, report.embedded, report.reused) == (2, 2, 3)
    assert not report.unchanged
    state = storage.state()
    assert storage.inspect(state).invalid == 0
    assert invalid_rows(storage) == []
    assert state.chunk_count == len(ARTICLES)
    assert index.search("flour yeast oven", limit=1) == [bread]
    assert index.search("telescope planets galaxies", limit=1) == [stars]
    embedded.clear()
    assert index.update().unchanged and embedded == []


@override_settings(WAGTAIL_VECTOR_INDEX=WIDE_SETTINGS)
def test_the_command_repairs_invalid_vectors_and_says_so(articles, embedded):
    call_command("update_vector_indexes", INDEX, "--noinput")
    bread = articles["Baking bread"]
    set_vector(bread, np.full(WIDE - 1, 0.2))
    embedded.clear()

    out = []
    call_command("update_vector_indexes", INDEX, "--noinput", stdout=Writer(out))

    text = "".join(out)
    assert "1 chunks to embed" in text
    assert "1 stored vectors were invalid" in text
    assert "Done: 1 chunks embedded, 4 reused." in text
    assert len(embedded) == 1
    assert invalid_rows(ArticlePage.vector_index.storage) == []


def test_a_build_holding_chunks_twice_is_rebuilt_without_embedding(articles, embedded):
    index = ArticlePage.vector_index
    index.update()
    state = index.storage.state()
    model = chunk_model()
    # What two updates activating the same build number used to leave.
    copies = list(model.objects.filter(index_name=INDEX, build=state.active_build))
    for row in copies:
        row.pk = None
    model.objects.bulk_create(copies)
    assert model.objects.filter(index_name=INDEX).count() == 2 * len(ARTICLES)
    embedded.clear()

    out = []
    call_command("update_vector_indexes", INDEX, "--noinput", stdout=Writer(out))

    assert "Done: 0 chunks embedded, 5 reused." in "".join(out)
    assert embedded == []
    assert model.objects.filter(index_name=INDEX).count() == len(ARTICLES)
    assert index.storage.state().chunk_count == len(ARTICLES)
    assert index.update().unchanged


class Writer:
    """A stdout for call_command that keeps what is written."""

    def __init__(self, parts):
        self.parts = parts

    def write(self, text):
        self.parts.append(text)

    def flush(self):
        pass


# -- item 3: one update at a time ---------------------------------------------


def test_one_holder_at_a_time_and_release():
    first, second = IndexLease("integrity.lease"), IndexLease("integrity.lease")
    assert first.try_acquire()
    assert not second.try_acquire()
    with pytest.raises(RuntimeError, match="already held"):
        first.try_acquire()
    assert IndexLease("integrity.other").try_acquire()  # Per index.
    first.release()
    assert second.try_acquire()
    row = IndexUpdateLease.objects.get(index_name="integrity.lease")
    assert row.owner == second.token and row.holder == holder_name()
    second.release()
    assert IndexUpdateLease.objects.get(index_name="integrity.lease").owner == ""


def test_a_second_update_stops_or_waits_with_a_clear_error(articles):
    index = ArticlePage.vector_index
    other = IndexLease(INDEX)
    assert other.try_acquire()

    with pytest.raises(IndexUpdateInProgressError) as caught:
        index.update()
    message = str(caught.value)
    assert f'"{INDEX}" is being updated by another process ({holder_name()}' in message
    assert "free again at" in message

    started = time.monotonic()
    with pytest.raises(IndexUpdateInProgressError, match="waited 0.6 seconds"):
        index.update(wait=0.6)
    assert 0.6 <= time.monotonic() - started < 3

    with pytest.raises(CommandError, match="--wait SECONDS") as caught:
        call_command("update_vector_indexes", INDEX, "--noinput", "--wait", "0.2")
    assert "is being updated by another process" in str(caught.value)
    assert not IndexState.objects.exists()

    other.release()
    assert index.update().embedded == len(ARTICLES)


def test_a_waiting_update_goes_ahead_when_the_lease_is_freed(articles, monkeypatch):
    index = ArticlePage.vector_index
    holder = IndexLease(INDEX)
    assert holder.try_acquire()
    sleeps = []

    def sleep(seconds):  # The holder finishes while the other waits.
        sleeps.append(seconds)
        holder.release()

    monkeypatch.setattr("wagtail_vector_index.index.lease.time.sleep", sleep)
    assert index.update(wait=None).embedded == len(ARTICLES)
    assert len(sleeps) == 1


def expire(index_name, **changes):
    IndexUpdateLease.objects.filter(index_name=index_name).update(**changes)


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])  # noqa: S603
    process.wait()
    return process.pid


@pytest.mark.parametrize(
    "changes",
    [
        # Expired: the holder stopped refreshing it (killed on another host).
        lambda: {"expires_at": timezone.now() - timedelta(seconds=1)},
        # Killed on this host (SIGKILL): no need to wait for the expiry.
        lambda: {"holder": f"{socket.gethostname()}:{dead_pid()}"},
        # Edited by hand, say.
        lambda: {"expires_at": None},
    ],
    ids=["expired", "holder-gone", "no-expiry"],
)
def test_a_lease_left_by_a_killed_process_does_not_block(articles, caplog, changes):
    assert IndexLease(INDEX).try_acquire()  # Never released.
    expire(INDEX, **changes())

    with caplog.at_level("WARNING"):
        report = ArticlePage.vector_index.update()

    assert report.embedded == len(ARTICLES)
    assert "took over the update lease" in caplog.text


def test_a_live_holder_elsewhere_is_waited_for_until_its_lease_expires(articles):
    assert IndexLease(INDEX).try_acquire()
    expire(INDEX, holder="another-host.example:1")
    with pytest.raises(IndexUpdateInProgressError, match="another-host.example:1"):
        ArticlePage.vector_index.update()
    expire(INDEX, expires_at=timezone.now() - timedelta(seconds=1))
    assert ArticlePage.vector_index.update().embedded == len(ARTICLES)


def test_an_update_whose_lease_was_taken_activates_nothing(articles, monkeypatch):
    index = ArticlePage.vector_index
    index.update()
    old = index.storage.state()
    bread = articles["Baking bread"]
    bread.body = "<p>Sourdough starter and patience.</p>"
    bread.save_revision().publish()
    storage_class = type(index.storage)
    real_write = storage_class.write_build

    def write_then_lose_the_lease(self, *args, **kwargs):
        real_write(self, *args, **kwargs)
        # The lease expired meanwhile and another process took it.
        expire(INDEX, owner="someone-else", holder="elsewhere:2")

    monkeypatch.setattr(storage_class, "write_build", write_then_lose_the_lease)
    with pytest.raises(IndexLeaseLostError, match="Nothing more of this update"):
        index.update(rebuild=True)
    monkeypatch.undo()

    state = index.storage.state()
    assert (state.active_build, state.revision) == (old.active_build, old.revision)
    assert index.search("flour yeast oven", limit=1) == [bread]
    lease = IndexUpdateLease.objects.get(index_name=INDEX)
    assert lease.owner == "someone-else"  # Not released by the loser.


def test_build_numbers_are_never_handed_out_twice(content_type):
    storage = get_storage("integrity.builds")
    lease = IndexLease("integrity.builds")
    assert lease.try_acquire()
    first = storage.next_build(lease=lease)
    storage.write_build(first, rows(content_type, [to_bytes(np.ones(4))]))
    # The update stops; the next one clears its rows, and still takes a new
    # number (the first might still be writing, with an expired lease).
    second = storage.next_build(lease=lease)
    assert not storage.chunks(first).exists()
    assert second == first + 1
    lease.release()
    with pytest.raises(IndexLeaseLostError):
        storage.next_build(lease=lease)


# -- publish-time updates queue behind an update --------------------------------

AUTO = {**OFFLINE, "AUTO_UPDATE": True}


def indexed(page):
    return chunk_model().objects.filter(index_name=INDEX, object_id=str(page.pk))


@override_settings(WAGTAIL_VECTOR_INDEX=AUTO)
def test_publishing_during_an_update_is_queued_and_applied(
    home, articles, django_capture_on_commit_callbacks
):
    index = ArticlePage.vector_index
    roses = articles["Pruning roses"]
    during = []

    def progress(done, total):
        # Another editor publishes and unpublishes while the update runs.
        with django_capture_on_commit_callbacks(execute=True):
            comets = home.add_child(
                instance=ArticlePage(title="Comets", body="<p>A comet tail.</p>")
            )
            comets.save_revision().publish()
            roses.unpublish()
        during.append(
            (
                comets,
                set(PendingIndexUpdate.objects.values_list("object_id", flat=True)),
                index.storage.state(),
            )
        )

    report = index.update(progress=progress)

    comets, queued, state_meanwhile = during[0]
    assert queued == {str(comets.pk), str(roses.pk)}
    assert state_meanwhile is None  # Nothing was written into a build meanwhile.
    assert report.embedded == len(ARTICLES)
    assert indexed(comets).exists()
    assert not indexed(roses).exists()
    assert index.search("comet tail", limit=1) == [comets]
    assert not PendingIndexUpdate.objects.exists()
    assert IndexUpdateLease.objects.get(index_name=INDEX).owner == ""


@override_settings(WAGTAIL_VECTOR_INDEX=AUTO)
def test_publishing_while_another_process_updates_queues_until_it_finishes(
    home, articles, django_capture_on_commit_callbacks
):
    index = ArticlePage.vector_index
    index.update()
    other = IndexLease(INDEX)
    assert other.try_acquire()  # "Another process" is updating.

    bread = articles["Baking bread"]
    bread_id = str(bread.pk)
    with django_capture_on_commit_callbacks(execute=True):
        comets = home.add_child(
            instance=ArticlePage(title="Comets", body="<p>A comet tail.</p>")
        )
        comets.save_revision().publish()
        bread.delete()
    queued = PendingIndexUpdate.objects.filter(index_name=INDEX)
    assert set(queued.values_list("object_id", flat=True)) == {str(comets.pk), bread_id}
    assert not indexed(comets).exists()
    assert chunk_model().objects.filter(index_name=INDEX, object_id=bread_id).exists()

    # That update ends: it applies the queue before letting the lease go.
    index._with_lease(other, lambda: None)

    assert indexed(comets).exists()
    assert not chunk_model().objects.filter(index_name=INDEX, object_id=bread_id)
    assert not queued.exists()


def test_a_queue_entry_written_as_the_holder_lets_go_is_not_lost(
    home, articles, monkeypatch
):
    # The holder has applied the queue; before it frees the lease, a
    # publish-time update finds the lease taken and queues its object.
    index = ArticlePage.vector_index
    index.update()
    comets = home.add_child(
        instance=ArticlePage(title="Comets", body="<p>A comet tail.</p>")
    )
    real_release = IndexLease.release
    queued = []

    def release(self):
        if self.held and not queued:
            queued.append(
                PendingIndexUpdate.objects.create(
                    index_name=INDEX,
                    content_type_id=comets.content_type_id,
                    object_id=str(comets.pk),
                )
            )
        real_release(self)

    holder = IndexLease(INDEX)
    assert holder.try_acquire()
    monkeypatch.setattr(IndexLease, "release", release)
    index._with_lease(holder, lambda: None)  # The end of the holder's update.

    assert queued and indexed(comets).exists()
    assert not PendingIndexUpdate.objects.exists()


def test_a_holder_letting_go_before_the_entry_is_written_is_not_lost(
    home, articles, monkeypatch
):
    # The publish-time update finds the lease taken; the holder frees it
    # before the entry is written (and so never sees it).
    index = ArticlePage.vector_index
    index.update()
    comets = home.add_child(
        instance=ArticlePage(title="Comets", body="<p>A comet tail.</p>")
    )
    real_try = IndexLease.try_acquire
    attempts = []

    def try_acquire(self):
        attempts.append(1)
        return False if len(attempts) == 1 else real_try(self)

    monkeypatch.setattr(IndexLease, "try_acquire", try_acquire)
    index.update_object(comets)

    assert len(attempts) >= 2
    assert indexed(comets).exists()
    assert not PendingIndexUpdate.objects.exists()


def test_a_queued_update_that_fails_stays_queued(home, articles, monkeypatch):
    index = ArticlePage.vector_index
    index.update()
    comets = home.add_child(
        instance=ArticlePage(title="Comets", body="<p>A comet tail.</p>")
    )
    other = IndexLease(INDEX)
    assert other.try_acquire()
    index.update_object(comets)  # Queued.
    monkeypatch.setattr(
        HashingEmbeddingBackend,
        "embed",
        lambda self, inputs, **kwargs: iter([[0.5] * 3 for _ in inputs]),
    )
    index._with_lease(other, lambda: None)
    assert PendingIndexUpdate.objects.filter(object_id=str(comets.pk)).exists()
    assert not indexed(comets).exists()

    monkeypatch.undo()
    assert index.update().unchanged is False  # Comets is new: embedded...
    assert indexed(comets).exists()
    assert not PendingIndexUpdate.objects.exists()  # ...and its entry done.


def test_the_lease_is_released_when_an_update_fails_or_is_interrupted(
    articles, monkeypatch
):
    index = ArticlePage.vector_index

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(index.storage), "activate", interrupt)
    with pytest.raises(KeyboardInterrupt):
        index.update()
    monkeypatch.undo()
    assert IndexUpdateLease.objects.get(index_name=INDEX).owner == ""
    assert index.update().embedded == len(ARTICLES)


def test_a_dry_run_takes_no_lease(articles):
    other = IndexLease(INDEX)
    assert other.try_acquire()
    out = []
    call_command("update_vector_indexes", INDEX, "--dry-run", stdout=Writer(out))
    assert "Dry run: not updated." in "".join(out)
