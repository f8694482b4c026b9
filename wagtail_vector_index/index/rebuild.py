"""Writing a new build: embedding requests overlapped with database writes.

:func:`write_build` walks the planned rows in order, in groups: a group ends
when it holds ``batch_size`` texts to embed (one embedding call) or
:data:`ROWS_PER_WRITE` rows. Each group's embedding call runs in a worker
thread while the main thread writes the groups before it; at most
``max_concurrency`` calls (the backend's ``CONFIG["MAX_CONCURRENCY"]``) are
in flight at once. The main thread alone touches the database (writes, the
lease, reading reusable vectors, the usage ledger's budget checks and
records); workers only call the provider.

Memory: vectors are held for at most ``max_concurrency`` groups at a
time, so at most ``max_concurrency * max(batch_size, ROWS_PER_WRITE)``
vectors (with the defaults, 4 workers and 256 texts per call, 4,000
vectors: 25 MB at 1,536 dimensions), whatever the size of the index. Texts
already embedded in this run, or reused from the answering build, are read
back from the storage when a group needs them.

The embedding cache (``cache``, see :mod:`wagtail_vector_index.embedding_cache`)
is consulted by the main thread for each group before its call starts: texts
it holds are not sent. The vectors a call brings are stored in it by the
main thread when the group is written, or, when the update stops first (an
error, a budget used up), once the request has finished: paid for, they
serve the next run.

The build being written does not answer until it is activated: an error or
an interruption leaves the old build answering (and the next update clears
the unfinished one).

In place (``build=None``), the rows go into the answering build instead:
each group then holds whole objects (an object's rows are never split
between groups) and is applied with one ``storage.apply_changes``, one
transaction, so that a search sees each object as it was or as it is now.
An interruption leaves the groups written so far applied and the rest as
they were; the next update finds and writes those.
"""

from __future__ import annotations

import contextvars
import copy
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import DEFAULT_DB_ALIAS, connections

from wagtail_vector_index.index.chunking import Chunk
from wagtail_vector_index.index.storage.types import ChunkRow
from wagtail_vector_index.redaction import get_logger

logger = get_logger(__name__)

#: The most rows written in one group (groups needing no provider call are
#: cut at this size too).
ROWS_PER_WRITE = 1_000


@dataclass
class _Group:
    rows: list[tuple[int, str, Chunk]] = field(default_factory=list)
    #: Content hashes this group embeds, in request order.
    new: list[str] = field(default_factory=list)
    vectors: Future | None = None
    #: The recorded embedding call of ``new`` (see ``DeferredEmbedding``).
    call: Any = None
    #: Vectors of the group's texts found in the embedding cache, by hash.
    cached: dict[str, Any] = field(default_factory=dict)


def _groups(
    rows: list[tuple[int, str, Chunk]],
    pending: dict[str, str],
    batch_size: int,
    *,
    whole_objects: bool = False,
) -> Iterator[_Group]:
    """``rows`` in groups; with ``whole_objects``, a full group ends only
    where the next object starts (an object's rows are consecutive)."""
    claimed: set[str] = set()  # Hashes an earlier group embeds.
    group = _Group()
    full = False
    for row in rows:
        if full and (not whole_objects or row[:2] != group.rows[-1][:2]):
            yield group
            group = _Group()
        digest = row[2].content_hash
        if digest in pending and digest not in claimed:
            claimed.add(digest)
            group.new.append(digest)
        group.rows.append(row)
        full = len(group.new) >= batch_size or len(group.rows) >= ROWS_PER_WRITE
    if group.rows:
        yield group


def write_build(
    *,
    storage: Any,
    state: Any,
    build: int | None,
    backend: Any,
    rows: list[tuple[int, str, Chunk]],
    pending: dict[str, str],
    dimensions: int,
    batch_size: int,
    on_group: Callable[[int, int], None],
    cache: Any = None,
    lease: Any = None,
    attributes: dict[tuple[int, str], tuple[str, int | None]] | None = None,
) -> None:
    """Embed ``pending`` (hash -> text) and write every row of ``rows`` into
    ``build`` (``None``: into the answering build, in place, each group's
    objects replaced at once, checking ``lease``); ``on_group(embedded,
    cached)`` runs after each group is written (to report progress and keep
    the lease). With ``cache`` (an ``embedding_cache.ModelCache``), texts it
    holds are not sent and new vectors are kept in it. ``attributes`` gives
    each object's ``(path, locale id)`` for its rows (see ``ChunkRow``)."""
    workers = max(1, int(getattr(backend.config, "max_concurrency", 1) or 1))
    batch_size = max(1, batch_size)
    in_flight: deque[_Group] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wvi-embed")

    def write_oldest() -> None:
        done = in_flight.popleft()
        try:
            _write_group(
                storage, state, build, done, dimensions, cache, lease, attributes
            )
        finally:
            _settle(done)
        on_group(len(done.new), len(done.cached))

    try:
        groups = _groups(rows, pending, batch_size, whole_objects=build is None)
        for group in groups:
            # Never more groups in flight than workers: every request
            # submitted starts at once (none waits in the pool's queue).
            while len(in_flight) >= workers:
                write_oldest()
            if group.new and cache is not None:
                group.cached = cache.lookup(group.new)
                group.new = [d for d in group.new if d not in group.cached]
            if group.new:
                texts = [pending[digest] for digest in group.new]
                group.call = backend.deferred_embedding(texts)
                # Budgets are checked here, in this thread (it may raise
                # AIBudgetExceededError: the update stops, nothing activated).
                group.call.start()
                # The caller's context (usage labels and the like) goes along.
                context = contextvars.copy_context()
                group.vectors = pool.submit(context.run, group.call.run)
            in_flight.append(group)
        while in_flight:
            write_oldest()
    finally:
        # On an error or an interruption the requests running finish; each
        # is recorded as it ended (its vectors are not written).
        pool.shutdown(wait=True)
        while in_flight:
            group = in_flight.popleft()
            _settle(group)
            _keep(cache, group)


def _settle(group: _Group) -> None:
    """Record the end of ``group``'s embedding call, once (this thread)."""
    call, group.call = group.call, None
    if call is None or group.vectors is None:
        return
    error = group.vectors.exception()
    if error is None:
        call.finish()
    else:
        call.fail(error)


def _keep(cache: Any, group: _Group) -> None:
    """Store the vectors of a group that was not written (the update
    stopped) in the embedding cache, if its request succeeded."""
    if cache is None or group.vectors is None or group.vectors.exception():
        return
    try:
        cache.store(dict(zip(group.new, group.vectors.result(), strict=True)))
    except Exception as error:  # The update's own error is the one to raise.
        logger.warning("Embedding cache: vectors of a stopped update lost: %s", error)


def _write_group(
    storage: Any,
    state: Any,
    build: int | None,
    group: _Group,
    dimensions: int,
    cache: Any = None,
    lease: Any = None,
    attributes: dict[tuple[int, str], tuple[str, int | None]] | None = None,
) -> None:
    vectors: dict[str, Any] = {}
    if group.vectors is not None:
        matrix = np.asarray(group.vectors.result(), dtype=np.float32)
        vectors = dict(zip(group.new, matrix, strict=True))
        if cache is not None:
            # Kept before the build is written: paid for, whatever follows.
            cache.store(vectors)
    vectors.update(group.cached)
    wanted = {c.content_hash for _, _, c in group.rows} - vectors.keys()
    if wanted:
        # Reused from the answering build, or embedded by an earlier group
        # of this run (already written to ``build``, or applied in place).
        builds = () if build is None else (build,)
        vectors.update(storage.vectors_by_hash(state, wanted, builds=builds))
    attributes = attributes or {}
    rows = [
        ChunkRow(
            ct,
            oid,
            c.position,
            c.text,
            c.content_hash,
            vectors[c.content_hash],
            *attributes.get((ct, oid), ("", None)),
        )
        for ct, oid, c in group.rows
    ]
    if build is not None:
        storage.write_build(build, rows, dimensions=dimensions)
        return
    changes: dict[tuple[int, str], list[ChunkRow]] = {}
    for row in rows:
        changes.setdefault((row.content_type_id, row.object_id), []).append(row)
    apply_changes(storage, state, changes, dimensions=dimensions, lease=lease)


def apply_changes(
    storage: Any,
    state: Any,
    changes: dict[tuple[int, str], list[ChunkRow]],
    *,
    dimensions: int | None = None,
    lease: Any = None,
) -> None:
    """``storage.apply_changes``, split between ``storage.write_concurrency``
    transactions running at once, each on a connection of its own with a
    share of the objects (about as many rows each): on pgvector, inserting
    rows into the HNSW graph is the server's CPU work, one core per
    connection. Each object is still written in one transaction. One
    transaction only inside a caller's (other connections could not see
    its rows) or for a single object. ``state`` is read again after."""
    writers = min(int(getattr(storage, "write_concurrency", 1) or 1), len(changes))
    using = getattr(storage, "using", None)
    if writers < 2 or connections[using or DEFAULT_DB_ALIAS].in_atomic_block:
        storage.apply_changes(state, changes, dimensions=dimensions, lease=lease)
        return
    shares: list[dict[tuple[int, str], list[ChunkRow]]] = [{} for _ in range(writers)]
    sizes = [0] * writers
    for key, object_rows in sorted(changes.items(), key=lambda item: -len(item[1])):
        smallest = sizes.index(min(sizes))
        shares[smallest][key] = object_rows
        sizes[smallest] += max(1, len(object_rows))

    def write(share: dict[tuple[int, str], list[ChunkRow]]) -> None:
        try:
            storage.apply_changes(
                copy.copy(state), share, dimensions=dimensions, lease=lease
            )
        finally:
            # This thread's connection, opened for the share.
            connections[using or DEFAULT_DB_ALIAS].close()

    with ThreadPoolExecutor(
        max_workers=writers - 1, thread_name_prefix="wvi-write"
    ) as pool:
        others = [
            pool.submit(contextvars.copy_context().run, write, share)
            for share in shares[1:]
        ]
        try:
            storage.apply_changes(
                copy.copy(state), shares[0], dimensions=dimensions, lease=lease
            )
        finally:
            errors = [future.exception() for future in others]
    for error in errors:
        if error is not None:
            raise error
    state.refresh_from_db()


def remove_objects(
    storage: Any, state: Any, keys: list[tuple[int, str]], *, lease: Any = None
) -> None:
    """Remove the objects ``keys`` from the answering build, in batches (each
    one transaction)."""
    for start in range(0, len(keys), ROWS_PER_WRITE):
        batch = keys[start : start + ROWS_PER_WRITE]
        storage.apply_changes(state, {key: [] for key in batch}, lease=lease)
