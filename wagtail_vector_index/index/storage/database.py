"""The default storage: the application database, searched with NumPy.

Vectors are stored as float32 bytes in ``EmbeddingChunk`` rows. A process
loads an index's vectors once into a normalised matrix and then follows the
index's changes: each search costs one small query for the revision (made by
the caller), a matrix product and one query for the texts of its hits. Rows
whose vectors do not fit the index (stored before vectors were checked:
another length, NaN or infinite values) are left out with a warning;
``update_vector_indexes`` embeds them again.

What a process holds
--------------------
Per index, a :class:`_Loaded` copy: rows ``[0, count)`` of a preallocated
:class:`_Rows` buffer (normalised vectors, and per row its content type,
object id, position and the row's primary key, never its text), a mask of
the rows still alive, the build, the index's revision it matches and its
position in the journal (the last ``IndexChange`` id it has applied).

Copies are never changed once a search can see them. A change makes a new
copy: the rows of changed objects are marked dead in a copy of the mask (one
byte per row), their current rows are written *after* ``count`` (rows no
copy can see yet) and the new copy, with a larger ``count``, replaces the old
one in the cache. A search takes the cached copy once and uses only it, so it
sees every change or none. When the buffer is full, or dead rows pass
``COMPACT_SHARE`` of it, the live rows are copied into a new buffer (a copy
of the whole matrix, once per that many changed rows, never in place: older
copies keep the old buffer). A filtered search (``keys=``) finds its
objects' rows in an index of rows by object, built for the buffer on the
first filtered search and extended as rows are appended (a copy takes the
rows below its ``count`` that its mask keeps). Texts are read for the hits
only, by primary key, in one query; a hit whose row was replaced meanwhile
makes the search run again on the index as it is now.

The journal
-----------
``ChunkTableStorage.apply_changes`` calls ``_changed`` in its transaction,
after replacing the objects' rows and before saving the new revision: one
``IndexChange`` row per object, with the build and ``parent``, the revision
the change was made on. A process whose copy is at revision R and journal
position J, given a state with another revision, reads the entries after J
for its build, marks those objects' rows dead and reads their current rows
(only theirs). A new build (``activate``), a dropped index, a journal pruned
past J (``IndexState.journal_floor``), a gap in the journal or too many
changed objects mean a full reload.

Why no change is missed
-----------------------
1. Ids follow commit order within an index. ``apply_changes`` locks the
   index's ``IndexState`` row (``select_for_update``) before anything else
   and writes the journal under that lock; SQLite admits one writing
   transaction at a time, and ``apply_changes`` has written (deleted rows)
   before ``_changed``. So an entry committed later than another of the same
   index has a higher id, and a reader that saw entries up to J sees every
   later change above J.
2. A copy knows when it is exact: a sync (full or incremental) runs between
   two readings of the revision (the caller's state, read before, and one
   query after), like a sequence lock. Every change commits a new revision
   together with its rows and journal entries, so the same revision before
   and after means nothing was committed in between: journal and rows were
   read from one state, whatever the database's isolation level. Otherwise
   the copy holds that state plus possibly parts of later changes, all of
   them journalled above its new position: it is synced again at once (up to
   ``SYNC_ATTEMPTS`` times; then it is kept marked inexact and the next search
   goes on from it).
3. The chain is checked, so that a violation of 1. (or a pruned journal)
   shows: the first entry read after an exact copy's position must have been
   made on the copy's revision, and a revision that moved with no entry
   after the position (a change that bypassed the journal) means a full
   reload.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from django.db.models.functions import Length

from wagtail_vector_index.index.storage.base import ChunkTableStorage, vector_problem
from wagtail_vector_index.index.storage.types import ChunkRow, Hit, Where
from wagtail_vector_index.models import EmbeddingChunk, IndexChange, IndexState
from wagtail_vector_index.redaction import get_logger

logger = get_logger(__name__)


def to_bytes(vector: Sequence[float]) -> bytes:
    return np.asarray(vector, dtype=np.float32).tobytes()


def from_bytes(data: bytes | memoryview) -> np.ndarray:
    return np.frombuffer(bytes(data), dtype=np.float32)


def normalise(matrix: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """Rows (or one vector) scaled to length 1; a zero row stays zero.

    The squares are added up by einsum, without the temporary the size of
    ``matrix`` that ``np.linalg.norm`` makes; ``in_place`` divides ``matrix``
    itself.
    """
    norms = np.sqrt(np.einsum("...i,...i->...", matrix, matrix))[..., np.newaxis]
    norms[norms == 0] = 1.0
    if in_place:
        matrix /= norms
        return matrix
    return matrix / norms


#: A filtered search scores only its rows (a copy of them) when they are at
#: most this share of the index; above it, every row is scored (no copy) and
#: the filter's rows picked out.
GATHER_SHARE = 0.1
#: A change that leaves more dead rows than this share of a copy's rows
#: compacts it (copies the live rows into a new buffer).
COMPACT_SHARE = 0.1
#: Journal entries kept per index; older ones are deleted (``PRUNE_SLACK``
#: at a time) and a copy older than them reloads everything.
JOURNAL_KEEP = 10_000
PRUNE_SLACK = 1_000
#: Changed objects a sync reads at most (in batches of ``OBJECT_BATCH``, the
#: size of one ``IN``): beyond that, or beyond ``RELOAD_SHARE`` of the copy's
#: rows, a full reload is cheaper.
MAX_CHANGED_OBJECTS = 5_000
OBJECT_BATCH = 500
RELOAD_SHARE = 0.25
#: Syncs in a row that may find the index changed while they read it.
SYNC_ATTEMPTS = 3
#: Searches in a row that may find a hit's row replaced before its text is
#: read (each on the index as it is then).
SEARCH_ATTEMPTS = 3

#: A row as a copy reads it: its place, what scoped searches filter on, and
#: last, its vector (the copy keeps all but the vector's bytes).
_ROW_FIELDS = (
    "pk",
    "content_type_id",
    "object_id",
    "position",
    "path",
    "locale_id",
    "vector",
)
#: The fields of :data:`_ROW_FIELDS` before the vector.
_KEPT = len(_ROW_FIELDS) - 1
#: ``locales`` of a row without a locale.
NO_LOCALE = -1


def _headroom(rows: int) -> int:
    """Rows allocated beyond ``rows``, for changes to be appended."""
    return max(256, rows // 32)


def _under(path: str, prefixes: tuple[str, ...]) -> bool:
    """Whether ``path`` starts with one of ``prefixes``; for no prefixes,
    whether there is no path (not a page)."""
    if not prefixes:
        return not path
    return bool(path) and path.startswith(prefixes)


def _key_hash(content_type_id: int, object_id: str) -> int:
    # Python's hash of the key: 64 bits, stable within the process (which is
    # all the copy needs); candidates are checked against the real keys.
    return hash((int(content_type_id), str(object_id)))


class _Rows:
    """The buffer copies share: rows are written once, below ``capacity``,
    and only above the ``count`` of every copy that uses the buffer."""

    def __init__(self, capacity: int, dimensions: int) -> None:
        self.capacity = capacity
        #: Rows written so far.
        self.size = 0
        #: Rows by object, built on the first filtered search and kept up to
        #: date by :meth:`put` (a row number is in it once written; copies
        #: take only theirs).
        self._by_key: dict[tuple[int, str], list[int]] | None = None
        self._lock = threading.Lock()
        self.vectors = np.empty((capacity, dimensions), dtype=np.float32)
        self.content_types = np.empty(capacity, dtype=np.int64)
        self.positions = np.empty(capacity, dtype=np.int64)
        self.pks = np.empty(capacity, dtype=np.int64)
        self.hashes = np.empty(capacity, dtype=np.int64)
        self.locales = np.empty(capacity, dtype=np.int64)
        self.object_ids: list[str] = []
        self.paths: list[str] = []
        #: Rows under some tree paths (or not pages), by those paths: made on
        #: the first scoped search asking for them, kept up to date by
        #: :meth:`put` (see :meth:`under`).
        self._under: dict[tuple[str, ...], np.ndarray] = {}

    def put(self, at: int, rows: list[tuple], vectors: np.ndarray | None) -> None:
        """Write ``rows`` (pk, content type, object id, position) and their
        ``vectors`` (``None``: already written) from row ``at`` on."""
        end = at + len(rows)
        with self._lock:
            by_key = self._by_key
            if by_key is not None:
                # Rows past ``at`` belong to no copy (an attempt not kept).
                for row in range(at, self.size):
                    key = (int(self.content_types[row]), self.object_ids[row])
                    by_key[key].remove(row)
            if vectors is not None:
                self.vectors[at:end] = vectors
            self.pks[at:end] = [row[0] for row in rows]
            self.content_types[at:end] = [row[1] for row in rows]
            self.positions[at:end] = [row[3] for row in rows]
            self.hashes[at:end] = [_key_hash(row[1], row[2]) for row in rows]
            self.locales[at:end] = [
                NO_LOCALE if row[5] is None else row[5] for row in rows
            ]
            del self.object_ids[at:]
            self.object_ids.extend(str(row[2]) for row in rows)
            del self.paths[at:]
            self.paths.extend(row[4] or "" for row in rows)
            for prefixes, mask in self._under.items():
                mask[at:end] = [_under(path, prefixes) for path in self.paths[at:end]]
            if by_key is not None:
                for number, row in enumerate(rows, start=at):
                    by_key.setdefault((int(row[1]), str(row[2])), []).append(number)
            self.size = end

    def under(self, prefixes: tuple[str, ...]) -> np.ndarray:
        """Whether each row's path starts with one of ``prefixes`` (``()``:
        whether it has none), over the whole capacity (rows not written yet:
        ``False``); worked out once per buffer and set of prefixes (a site's
        root path, restricted pages')."""
        mask = self._under.get(prefixes)
        if mask is None:
            with self._lock:
                mask = self._under.get(prefixes)
                if mask is None:
                    mask = np.zeros(self.capacity, dtype=bool)
                    mask[: self.size] = [
                        _under(path, prefixes) for path in self.paths[: self.size]
                    ]
                    self._under[prefixes] = mask
        return mask

    def by_key(self) -> dict[tuple[int, str], list[int]]:
        """Every written row's number by object (built once per buffer)."""
        if self._by_key is None:
            with self._lock:
                if self._by_key is None:
                    by_key: dict[tuple[int, str], list[int]] = {}
                    types = self.content_types[: self.size].tolist()
                    for row, key in enumerate(zip(types, self.object_ids, strict=True)):
                        by_key.setdefault(key, []).append(row)
                    self._by_key = by_key
        return self._by_key


class _Loaded:
    """One index as a process holds it: rows ``[0, count)`` of ``rows``,
    those where ``alive`` is true (``None``: all). Never changed once cached.
    """

    def __init__(
        self,
        *,
        state_id: int,
        revision: str,
        build: int,
        position: int,
        rows: _Rows,
        count: int,
        alive: np.ndarray | None,
        exact: bool = True,
    ) -> None:
        self.state_id = state_id
        self.revision = revision
        self.build = build
        #: The last journal entry applied.
        self.position = position
        #: Whether the rows are exactly those of ``revision`` (see the module
        #: docstring: a copy synced while the index changed is not).
        self.exact = exact
        self.rows = rows
        self.count = count
        self.alive = alive
        self.live = count if alive is None else int(np.count_nonzero(alive))

    @property
    def matrix(self) -> np.ndarray:
        """The normalised vectors of rows ``[0, count)`` (dead ones included)."""
        return self.rows.vectors[: self.count]

    def current(self, state: IndexState) -> bool:
        return (
            self.revision == state.revision
            and self.build == state.active_build
            and self.state_id == state.pk
        )

    def rows_for(
        self, wanted: Collection[tuple[int, str]], *, few: bool = False
    ) -> np.ndarray:
        """The live rows of the chunks of ``wanted`` objects, in order.

        Looked up in the buffer's rows by object (built on first use), or,
        for ``few`` objects while there is none, by comparing key hashes
        (a sync does not build it for a handful of changed objects)."""
        # In the caller's order (often the table's): the lookups then walk
        # memory in order, several times faster than in a set's order.
        keys = dict.fromkeys(
            (int(content_type), str(object_id)) for content_type, object_id in wanted
        )
        if not keys or not self.count:
            return np.empty(0, dtype=np.intp)
        if not few or self.rows._by_key is not None:
            by_key = self.rows.by_key()
            found: list[int] = []
            for key in keys:
                # list.extend copies in one step: a put() in another thread
                # only adds rows no copy in use can see.
                found.extend(by_key.get(key, ()))
            rows = np.fromiter(found, dtype=np.intp, count=len(found))
            rows = np.sort(rows[rows < self.count])
            return rows if self.alive is None else rows[self.alive[rows]]
        hashes = np.fromiter(
            (_key_hash(*key) for key in keys), dtype=np.int64, count=len(keys)
        )
        rows = np.flatnonzero(np.isin(self.rows.hashes[: self.count], hashes))
        if self.alive is not None:
            rows = rows[self.alive[rows]]
        types, ids = self.rows.content_types, self.rows.object_ids
        found = [row for row in rows.tolist() if (int(types[row]), ids[row]) in keys]
        return np.fromiter(found, dtype=np.intp, count=len(found))


def _checked_vectors(
    rows: Iterable[tuple], dimensions: int
) -> tuple[list[tuple], np.ndarray, int]:
    """The rows whose vectors have ``dimensions`` values, those vectors
    normalised, and how many rows were left out (another length)."""
    kept: list[tuple] = []
    vectors: list[np.ndarray] = []
    invalid = 0
    size = 4 * dimensions
    for row in rows:
        if len(row[_KEPT]) != size:
            invalid += 1
            continue
        kept.append(row[:_KEPT])
        vectors.append(np.frombuffer(row[_KEPT], dtype=np.float32))
    if not vectors:
        return kept, np.empty((0, dimensions), dtype=np.float32), invalid
    return kept, normalise(np.vstack(vectors), in_place=True), invalid


def _not_finite(matrix: np.ndarray) -> np.ndarray:
    """The rows of ``matrix`` holding NaN or infinite values."""
    # A NaN or an infinity makes its row's sum of squares NaN or infinite (so
    # might huge finite values: those rows are checked).
    squares = np.einsum("ij,ij->i", matrix, matrix)
    suspects = np.flatnonzero(~np.isfinite(squares))
    return np.array(
        [i for i in suspects if not np.isfinite(matrix[i]).all()], dtype=np.intp
    )


def _allowed(loaded: _Loaded, where: Where | None) -> np.ndarray | None:
    """Which of ``loaded``'s rows ``where``'s path and locale conditions
    allow (``None``: it sets none), as ``Where.allows`` decides."""
    if where is None:
        return None
    rows, count = loaded.rows, loaded.count
    allowed = None
    if where.paths is not None:
        allowed = rows.under(where.paths)[:count] | rows.under(())[:count]
    if where.excluded_paths:
        kept = ~rows.under(where.excluded_paths)[:count]
        allowed = kept if allowed is None else allowed & kept
    if where.locale_id is not None:
        locales = rows.locales[:count]
        same = (locales == where.locale_id) | (locales == NO_LOCALE)
        allowed = same if allowed is None else allowed & same
    return allowed


class DatabaseStorage(ChunkTableStorage):
    """Vectors in the application database, searched in memory with NumPy."""

    model = EmbeddingChunk
    filters_in_engine = True
    _cache: dict[str, _Loaded] = {}
    _lock = threading.Lock()
    #: Journal entries kept per index (see :data:`JOURNAL_KEEP`).
    journal_keep = JOURNAL_KEEP

    # -- checking vectors --------------------------------------------------

    def vector_bytes(self, vector: Any) -> bytes:
        if isinstance(vector, bytes | bytearray | memoryview):
            return bytes(vector)
        return to_bytes(vector)

    def vector_problem(self, data: bytes, dimensions: int) -> str | None:
        if len(data) == 4 * dimensions and dimensions:
            if np.isfinite(np.frombuffer(data, dtype=np.float32)).all():
                return None
            return "holds NaN or infinite values"
        return vector_problem(data, dimensions)

    def _vector_rows(self, queryset: Any, fields: Sequence[str]) -> Iterator[tuple]:
        for *values, data in queryset.values_list(*fields, "vector").iterator(
            chunk_size=2_000
        ):
            yield (*values, bytes(data))

    def _wrong_dimensions(self, queryset: Any, dimensions: int) -> Any:
        return queryset.annotate(size=Length("vector")).exclude(size=4 * dimensions)

    def _warn_invalid(self, invalid: int, dimensions: int) -> None:
        if invalid:
            logger.warning(
                'Vector index "%s": %s stored vectors do not fit the index '
                "(not %s dimensions, or NaN or infinite values) and are left "
                "out of searches. Run manage.py update_vector_indexes to "
                "embed them again.",
                self.index_name,
                invalid,
                dimensions,
            )

    # -- reading -----------------------------------------------------------

    def _loaded(self, state: IndexState) -> _Loaded:
        loaded = self._cache.get(self.index_name)
        if loaded is not None and loaded.current(state):
            return loaded
        with self._lock:
            loaded = self._cache.get(self.index_name)
            if loaded is None or not loaded.current(state):
                loaded = self._sync(loaded, state)
                self._cache[self.index_name] = loaded
        return loaded

    def _sync(self, loaded: _Loaded | None, state: IndexState) -> _Loaded:
        """``loaded`` brought up to the index as it is (``state`` was read
        just before): by the journal when it can, else by a full load. See
        the module docstring for why nothing is missed."""
        for _attempt in range(SYNC_ATTEMPTS):
            if loaded is not None and loaded.current(state):
                return loaded
            candidate = None
            moved_alone = False
            if (
                loaded is not None
                and loaded.state_id == state.pk
                and loaded.build == state.active_build
                and state.journal_floor <= loaded.position
            ):
                entries = self._journal(loaded)
                if not entries:
                    candidate = loaded
                    # Nothing journalled, yet another revision: unless the
                    # caller's state is older than the copy, a change bypassed
                    # the journal (told after the second reading).
                    moved_alone = loaded.exact
                elif not loaded.exact or entries[0][3] == loaded.revision:
                    candidate = self._apply(loaded, entries, state)
            if candidate is None:
                candidate = self._load(state)
            after = (
                IndexState.objects.filter(pk=state.pk)
                .values_list("revision", "active_build")
                .first()
            )
            if after is None:  # Dropped meanwhile: the copy serves this search.
                return candidate
            if after == (state.revision, state.active_build):
                if moved_alone and candidate.revision != state.revision:
                    loaded = None  # A change the journal does not hold.
                    continue
                return self._at(candidate, state.revision, exact=True)
            if moved_alone and after == (loaded.revision, loaded.build):
                return loaded  # The caller's state was older than the copy.
            # Changed while it was read: go on from here, with the new state.
            loaded = candidate if candidate is loaded else self._at(candidate, None)
            fresh = IndexState.objects.filter(pk=state.pk).first()
            if fresh is None:
                return loaded
            state = fresh
        return loaded if loaded is not None else self._load(state)

    @staticmethod
    def _at(loaded: _Loaded, revision: str | None, *, exact: bool = False) -> _Loaded:
        """A copy of ``loaded`` (same rows) marked as of ``revision``
        (``None``: unknown, so that the next search syncs it again)."""
        marked = copy.copy(loaded)
        marked.revision = revision or ""
        marked.exact = exact
        return marked

    def _journal(self, loaded: _Loaded) -> list[tuple[int, int, str, str]]:
        """The journal entries after ``loaded``'s position: (id, content
        type, object id, parent revision), in order."""
        return list(
            IndexChange.objects.filter(
                index_name=self.index_name, build=loaded.build, id__gt=loaded.position
            )
            .order_by("id")
            .values_list("id", "content_type_id", "object_id", "parent")
        )

    def _load(self, state: IndexState) -> _Loaded:
        """Every row of the active build, read into a new buffer."""
        # The position first: entries of changes committed after it have
        # higher ids, whether or not their rows are read below.
        last = (
            IndexChange.objects.filter(index_name=self.index_name)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
        # Never below the floor: ids up to it are gone, not pending.
        position = max(last or 0, state.journal_floor)
        chunks = self.chunks(state.active_build)
        dimensions = state.dimensions
        # Vectors are copied one by one into a buffer of the expected size
        # (no list of rows, no second copy): the peak is about the matrix
        # itself, 4 bytes per dimension per chunk, plus the headroom.
        expected = chunks.count()
        rows = _Rows(expected + _headroom(expected), dimensions)
        count = invalid = 0
        size = 4 * dimensions
        batch: list[tuple] = []
        query = chunks.order_by("pk").values_list(*_ROW_FIELDS)
        for row in query.iterator(chunk_size=2_000):
            if len(row[_KEPT]) != size:
                invalid += 1  # Another length: it cannot be compared.
                continue
            at = count + len(batch)
            if at == rows.capacity:
                # More rows than counted (objects updated meanwhile).
                rows.put(count, batch, None)
                count, batch = at, []
                rows = self._compacted(rows, count, None, _headroom(count))
            rows.vectors[at] = np.frombuffer(row[_KEPT], dtype=np.float32)
            batch.append(row[:_KEPT])
            if len(batch) == 2_000:
                rows.put(count, batch, None)
                count, batch = count + len(batch), []
        rows.put(count, batch, None)
        count += len(batch)
        bad = _not_finite(rows.vectors[:count])
        alive = None
        if len(bad):
            invalid += len(bad)
            rows.vectors[bad] = 0.0  # Scores stay finite; the row is dead.
            alive = np.ones(count, dtype=bool)
            alive[bad] = False
        normalise(rows.vectors[:count], in_place=True)
        self._warn_invalid(invalid, dimensions)
        return _Loaded(
            state_id=state.pk,
            revision=state.revision,
            build=state.active_build,
            position=position,
            rows=rows,
            count=count,
            alive=alive,
        )

    def _compacted(
        self, rows: _Rows, count: int, alive: np.ndarray | None, extra: int
    ) -> _Rows:
        """A new buffer holding the live rows of ``rows[:count]`` first, with
        room for ``extra`` more and the headroom."""
        keep = np.arange(count) if alive is None else np.flatnonzero(alive)
        fresh = _Rows(
            len(keep) + extra + _headroom(len(keep) + extra), rows.vectors.shape[1]
        )
        live = len(keep)
        np.take(rows.vectors, keep, axis=0, out=fresh.vectors[:live])
        for name in ("content_types", "positions", "pks", "hashes", "locales"):
            np.take(getattr(rows, name), keep, out=getattr(fresh, name)[:live])
        kept = keep.tolist()
        ids, paths = rows.object_ids, rows.paths
        fresh.object_ids = [ids[i] for i in kept]
        fresh.paths = [paths[i] for i in kept]
        fresh.size = live
        return fresh

    def _apply(
        self, loaded: _Loaded, entries: list[tuple], state: IndexState
    ) -> _Loaded | None:
        """A new copy with the objects of journal ``entries`` as they are
        now; ``None`` when a full reload is cheaper."""
        objects = {(int(entry[1]), str(entry[2])) for entry in entries}
        dead = loaded.rows_for(objects, few=len(objects) <= 16)
        if len(objects) > MAX_CHANGED_OBJECTS or len(dead) > RELOAD_SHARE * max(
            loaded.live, 1
        ):
            return None
        keys = sorted(objects)
        found: list[tuple] = []
        for start in range(0, len(keys), OBJECT_BATCH):
            chunk = self._of_objects(loaded.build, keys[start : start + OBJECT_BATCH])
            found += chunk.values_list(*_ROW_FIELDS)
        found.sort(key=lambda row: row[0])
        added, vectors, invalid = _checked_vectors(
            ((*row[:_KEPT], bytes(row[_KEPT])) for row in found), state.dimensions
        )
        bad = _not_finite(vectors)
        if len(bad):
            invalid += len(bad)
            keep = np.ones(len(added), dtype=bool)
            keep[bad] = False
            added = [row for row, kept in zip(added, keep, strict=True) if kept]
            vectors = vectors[keep]
        self._warn_invalid(invalid, state.dimensions)

        alive = (
            np.ones(loaded.count, dtype=bool)
            if loaded.alive is None
            else loaded.alive.copy()
        )
        alive[dead] = False
        rows, count = loaded.rows, loaded.count
        dead_after = int(count - np.count_nonzero(alive))
        total = count + len(added)
        if total > rows.capacity or dead_after > COMPACT_SHARE * total:
            rows = self._compacted(rows, count, alive, len(added))
            count = int(np.count_nonzero(alive))
            alive = None
        else:
            # Above ``count``: no copy in use can see these rows.
            alive = np.concatenate([alive, np.ones(len(added), dtype=bool)])
            if alive.all():
                alive = None
        rows.put(count, added, vectors)
        return _Loaded(
            state_id=loaded.state_id,
            revision=state.revision,
            build=loaded.build,
            position=max(loaded.position, entries[-1][0]),
            rows=rows,
            count=count + len(added),
            alive=alive,
        )

    def search(
        self,
        state: IndexState,
        vector: Sequence[float],
        limit: int,
        *,
        keys: Collection[tuple[int, str]] | None = None,
        where: Where | None = None,
    ) -> list[Hit]:
        """The ``limit`` chunks most similar to ``vector`` (cosine), best
        first; with ``keys``, among the chunks of those objects only; with
        ``where``, among the rows it allows (masks over the copy's paths and
        locales, see :meth:`_Rows.under`)."""
        if where is not None and where.keys is not None:
            keys = where.keys if keys is None else set(keys) & where.keys
            if not keys:
                return []
        data = None
        for _attempt in range(SEARCH_ATTEMPTS):
            loaded = self._loaded(state)
            if not loaded.live or limit <= 0:
                return []
            if data is None:
                data = self.check_query(vector, state.dimensions)
            found = self._best(loaded, data, limit, keys, where)
            texts = self._texts([int(loaded.rows.pks[row]) for row, _ in found])
            if len(texts) == len(found):
                break
            # A hit's row was replaced since the copy was made: the index has
            # moved on, search it as it is now (after the last attempt, such
            # hits are left out).
            state = self.state() or state
        types, ids = loaded.rows.content_types, loaded.rows.object_ids
        positions, pks = loaded.rows.positions, loaded.rows.pks
        return [
            Hit(int(types[row]), ids[row], int(positions[row]), texts[pk], score)
            for row, score in found
            if (pk := int(pks[row])) in texts
        ]

    def _texts(self, pks: list[int]) -> dict[int, str]:
        """The texts of the rows ``pks`` that still exist (one query)."""
        return dict(EmbeddingChunk.objects.filter(pk__in=pks).values_list("pk", "text"))

    def _best(
        self,
        loaded: _Loaded,
        data: bytes,
        limit: int,
        keys: Collection[tuple[int, str]] | None,
        where: Where | None = None,
    ) -> list[tuple[int, float]]:
        """The best rows of ``loaded`` and their scores."""
        query = normalise(np.frombuffer(data, dtype=np.float32))
        allowed = _allowed(loaded, where)
        if keys is None and allowed is not None:
            if loaded.alive is not None:
                allowed = allowed & loaded.alive
            candidates = int(np.count_nonzero(allowed))
            if not candidates:
                return []
            if candidates <= GATHER_SHARE * loaded.live:
                rows = np.flatnonzero(allowed)
                scores = loaded.matrix[rows] @ query
            else:
                rows = None
                scores = loaded.matrix @ query
                scores[~allowed] = -np.inf
        elif keys is None:
            rows = None
            scores = loaded.matrix @ query
            if loaded.alive is not None:
                scores[~loaded.alive] = -np.inf
            candidates = loaded.live
        else:
            rows = loaded.rows_for(keys)
            if allowed is not None:
                rows = rows[allowed[rows]]
            if not len(rows):
                return []
            if len(rows) <= GATHER_SHARE * loaded.live:
                scores = loaded.matrix[rows] @ query
            else:
                scores = (loaded.matrix @ query)[rows]
            candidates = len(rows)
        count = min(limit, candidates)
        best = np.argpartition(-scores, count - 1)[:count]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [(int(i if rows is None else rows[i]), float(scores[i])) for i in best]

    def object_vectors(
        self, state: IndexState, content_type_id: int, object_id: str
    ) -> list[np.ndarray]:
        """The valid vectors of one object's chunks, in order."""
        rows = self.chunks(state.active_build).filter(
            content_type_id=content_type_id, object_id=object_id
        )
        return [
            from_bytes(data)
            for (data,) in self._vector_rows(rows.order_by("position"), [])
            if not self.vector_problem(data, state.dimensions)
        ]

    # -- writing -----------------------------------------------------------

    def _bulk(self, build: int, rows: Iterable[ChunkRow]) -> None:
        EmbeddingChunk.objects.bulk_create(
            (
                EmbeddingChunk(
                    index_name=self.index_name,
                    build=build,
                    content_type_id=row.content_type_id,
                    object_id=row.object_id,
                    position=row.position,
                    text=row.text,
                    content_hash=row.content_hash,
                    vector=self.vector_bytes(row.vector),
                    path=getattr(row, "path", ""),
                    locale_id=getattr(row, "locale_id", None),
                )
                for row in rows
            ),
            batch_size=500,
        )

    def _changed(self, state: IndexState, keys: Iterable[tuple[int, str]]) -> None:
        """One journal entry per changed object, in ``apply_changes``'s
        transaction (the index's state row is locked), then the journal
        pruned to the newest :attr:`journal_keep` entries."""
        IndexChange.objects.bulk_create(
            (
                IndexChange(
                    index_name=self.index_name,
                    build=state.active_build,
                    content_type_id=int(content_type_id),
                    object_id=str(object_id),
                    parent=state.revision,
                )
                for content_type_id, object_id in keys
            ),
            batch_size=500,
        )
        self._prune(state)

    def _prune(self, state: IndexState) -> None:
        journal = IndexChange.objects.filter(index_name=self.index_name)
        keep = self.journal_keep
        newest = journal.order_by("-id").values_list("id", flat=True)
        # One index scan per change; a delete once PRUNE_SLACK entries more
        # than those kept have gathered.
        if not newest[keep + PRUNE_SLACK : keep + PRUNE_SLACK + 1]:
            return
        floor = newest[keep]
        journal.filter(id__lte=floor).delete()
        # Recorded on the state (locked by apply_changes): a copy whose
        # position is below it reloads everything.
        IndexState.objects.filter(pk=state.pk).update(journal_floor=floor)
        state.journal_floor = floor

    def activate(
        self,
        build: int,
        *,
        model_id: str,
        dimensions: int,
        object_count: int,
        lease: Any = None,
        chunking: str = "",
    ) -> IndexState:
        """Make ``build`` the answering one and drop the others, atomically.

        Refused (:class:`InvalidVectorError`) if a row of the build has other
        dimensions; with ``lease``, only while it is still held. Every
        process reloads the new build whole; the journal of older builds is
        deleted.
        """
        state = self._switch(
            build,
            model_id=model_id,
            dimensions=dimensions,
            object_count=object_count,
            lease=lease,
            chunking=chunking,
        )
        IndexChange.objects.filter(index_name=self.index_name).exclude(
            build=state.active_build
        ).delete()
        return state

    def drop(self) -> None:
        super().drop()
        IndexChange.objects.filter(index_name=self.index_name).delete()

    def forget(self) -> None:
        """Drop this process's in-memory copy."""
        self._cache.pop(self.index_name, None)
