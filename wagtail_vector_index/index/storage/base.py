"""What both storages do alike with their table of chunks and ``IndexState``.

``DatabaseStorage`` (NumPy) and ``PgvectorStorage`` differ in how vectors are
stored and searched; the bookkeeping of builds, states and objects is the same
and lives here. Nothing here imports NumPy or pgvector.

Vectors are checked before they are stored: a vector of another length than
the index's dimensions, or holding NaN or infinite values, raises
:class:`InvalidVectorError` and nothing of it is written. Vectors stored
before these checks existed are recognised when read (:meth:`inspect`,
:meth:`vectors_by_hash`), so that an update re-embeds them instead of reusing
them.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Max, Q
from django.utils.translation import gettext as _

from wagtail_vector_index.exceptions import WagtailVectorIndexError
from wagtail_vector_index.models import IndexState, new_revision

#: A chunk's identity in a build: content type, object id, position, hash.
Key = tuple[int, str, int, str]


class _BuildMoved(Exception):
    """Another build became the answering one during a change (which is
    rolled back and made again there)."""


class InvalidVectorError(WagtailVectorIndexError, ValueError):
    """A vector that does not fit the index: another number of dimensions, or
    NaN or infinite values. Raised before anything of it is stored (and so
    before the build it belongs to is activated), or before a search with
    it."""

    def __init__(
        self,
        index_name: str,
        where: str,
        problem: str,
        *,
        outcome: str | None = None,
    ) -> None:
        self.index_name = index_name
        self.problem = problem
        if outcome is None:
            outcome = _("It was not stored; the index as it was keeps answering.")
        super().__init__(
            # Translators: %(where)s names a chunk or the query, %(problem)s
            # says what is wrong with its vector, %(outcome)s what happened.
            _(
                'Vector index "%(index)s": the vector of %(where)s %(problem)s. %(outcome)s'  # noqa: E501
            )
            % {
                "index": index_name,
                "where": where,
                "problem": problem,
                "outcome": outcome,
            }
        )


#: Where the highest byte of each native float32 lies (sign and exponent).
_HIGH_BYTE = 3 if sys.byteorder == "little" else 0


def surely_fits(data: bytes, dimensions: int) -> bool:
    """A quick proof that float32 ``data`` fits an index of ``dimensions``:
    the right length, and no value whose highest byte is 0x7F or 0xFF (only
    those can hold NaN or infinity: magnitudes of 2**127 and up). ``False``
    proves nothing: ask :func:`vector_problem`."""
    if not dimensions or len(data) != 4 * dimensions:
        return False
    high = data[_HIGH_BYTE::4]
    return b"\x7f" not in high and b"\xff" not in high


def vector_problem(data: bytes, dimensions: int) -> str | None:
    """What is wrong with float32 ``data`` for an index of ``dimensions``, or
    ``None`` when it fits (pure Python; storages may do it faster)."""
    size = len(data)
    if size % 4:
        return _("is %(size)s bytes long, not a whole number of float32 values") % {
            "size": size
        }
    if size == 0:
        return _("has no values")
    if size != 4 * dimensions:
        return _("has %(length)s dimensions; the index has %(dimensions)s") % {
            "length": size // 4,
            "dimensions": dimensions,
        }
    values = array("f")
    values.frombytes(data)
    # NaN and infinities survive a sum (float32 values cannot overflow it).
    if not math.isfinite(sum(values)):
        return _("holds NaN or infinite values")
    return None


def record_build(
    index_name: str,
    build: int,
    *,
    model_id: str,
    dimensions: int,
    chunk_count: int,
    object_count: int,
    chunking: str,
) -> IndexState:
    """Make ``build`` the answering one in the index's state (made if
    missing), its row locked until the caller's transaction ends; every
    storage's activation ends with it."""
    state, _ = IndexState.objects.select_for_update().get_or_create(
        index_name=index_name,
        defaults={"model_id": model_id, "dimensions": dimensions},
    )
    state.model_id = model_id
    state.dimensions = dimensions
    state.active_build = build
    state.revision = new_revision()
    state.chunk_count = chunk_count
    state.object_count = object_count
    state.chunking = chunking
    state.save()
    return state


@dataclass
class StoredBuild:
    """What :meth:`ChunkTableStorage.inspect` found in the active build."""

    #: Content hashes with a valid vector, for reuse (the vectors are read
    #: when needed: :meth:`ChunkTableStorage.vectors_by_hash`).
    hashes: set[str] = field(default_factory=set)
    #: Every row's key, counted: more than one means a duplicate.
    keys: Counter[Key] = field(default_factory=Counter)
    #: Rows whose vector does not fit the index (wrong length, NaN, inf).
    invalid: int = 0
    #: The ``(content type id, object id)`` of the objects holding them.
    invalid_objects: set[tuple[int, str]] = field(default_factory=set)
    #: What scoped searches filter each object on, as stored: ``(path,
    #: locale id)`` (``None`` for a storage that does not store them).
    attributes: dict[tuple[int, str], Any] | None = None

    def count(self, key: Key, valid: bool) -> None:
        """Count one stored row: its key, and its hash as reusable if its
        vector is ``valid``."""
        self.keys[key] += 1
        if valid:
            self.hashes.add(key[3])
        else:
            self.invalid += 1
            self.invalid_objects.add((key[0], key[1]))


class ChunkTableStorage:
    """A storage keeping one row per chunk in ``model``, builds side by side.

    Subclasses set ``model`` (the chunk model) and ``using`` (its database
    alias; ``None`` for the default), write rows in ``_bulk`` and read vectors
    as float32 bytes in ``_vector_rows``.
    """

    model: Any
    using: str | None = None
    #: Whether the chunk model stores ``path`` and ``locale_id`` and
    #: :meth:`search` takes ``where=`` (see ``Where``).
    filters_in_engine = False
    #: How many ``apply_changes`` transactions an update in place may run at
    #: once on connections of their own (each with other objects); more than
    #: one needs :meth:`_lock_objects`.
    write_concurrency = 1

    def __init__(self, index_name: str, *, config: Any = None) -> None:
        self.index_name = index_name
        #: ``STORAGE["CONFIG"]`` (empty when ``STORAGE`` is a dotted path).
        self.config = dict(config or {})

    def _bulk(self, build: int, rows: Iterable[Any]) -> None:
        raise NotImplementedError

    def _vector_rows(self, queryset: Any, fields: Sequence[str]) -> Iterator[tuple]:
        """``fields`` of each row of ``queryset`` and, last, its vector as
        float32 bytes."""
        raise NotImplementedError

    def _wrong_dimensions(self, queryset: Any, dimensions: int) -> Any:
        """The rows of ``queryset`` whose vectors have other dimensions,
        found in SQL."""
        raise NotImplementedError

    def _validity_rows(
        self, queryset: Any, fields: Sequence[str], dimensions: int
    ) -> Iterator[tuple]:
        """``fields`` of each row and, last, whether its vector fits an index
        of ``dimensions`` (by reading it here; storages that can tell in SQL
        do so without sending the vectors). Vectors :func:`surely_fits`
        proves valid are not checked further: of a 100,000-row build, that
        is most of the time spent besides reading them."""
        for *values, data in self._vector_rows(queryset, fields):
            valid = surely_fits(data, dimensions)
            yield (*values, valid or not self.vector_problem(data, dimensions))

    def _vectors_fit(self, state: IndexState) -> bool:
        """Whether every vector of the active build is known to fit
        ``state.dimensions`` without reading any (``False``: :meth:`inspect`
        checks each)."""
        return False

    def _clear_unfinished(self, active: int) -> None:
        """Called by ``next_build`` after the rows of builds other than
        ``active`` (interrupted runs) are deleted."""

    # -- checking vectors ----------------------------------------------------

    def vector_bytes(self, vector: Any) -> bytes:
        """A vector given as float32 bytes or numbers, as float32 bytes."""
        if isinstance(vector, bytes | bytearray | memoryview):
            return bytes(vector)
        if hasattr(vector, "tobytes") and getattr(vector, "dtype", None) == "float32":
            return vector.tobytes()  # A float32 NumPy array, without NumPy.
        if hasattr(vector, "to_list"):  # pgvector.Vector
            vector = vector.to_list()
        return array("f", (float(value) for value in vector)).tobytes()

    def vector_problem(self, data: bytes, dimensions: int) -> str | None:
        """What is wrong with stored or new float32 ``data``, or ``None``."""
        return vector_problem(data, dimensions)

    def check_query(self, vector: Any, dimensions: int) -> bytes:
        """``vector`` as float32 bytes, if a search of ``dimensions`` can use
        it; :class:`InvalidVectorError` otherwise."""
        data = self.vector_bytes(vector)
        problem = self.vector_problem(data, dimensions)
        if problem:
            raise InvalidVectorError(
                self.index_name,
                _("the query"),
                problem,
                outcome=_("Nothing was searched."),
            )
        return data

    def _checked(
        self, rows: Iterable[Any], dimensions: int | None, build: int | str
    ) -> Iterator[Any]:
        """``rows`` with their vectors as float32 bytes, each checked against
        ``dimensions`` (without them: against the first row's)."""
        for row in rows:
            data = self.vector_bytes(row.vector)
            if dimensions is None and len(data) % 4 == 0:
                dimensions = len(data) // 4
            problem = self.vector_problem(data, dimensions or 0)
            if problem:
                where = _(
                    "chunk %(position)s of object %(object)s (build %(build)s)"
                ) % {
                    "position": row.position,
                    "object": f"{row.content_type_id}/{row.object_id}",
                    "build": build,
                }
                raise InvalidVectorError(self.index_name, where, problem)
            yield dataclasses.replace(row, vector=data)

    def check_build(self, build: int, dimensions: int) -> None:
        """Raise :class:`InvalidVectorError` if a row of ``build`` has other
        dimensions than ``dimensions`` (one query; before activating it)."""
        wrong = self._wrong_dimensions(self.chunks(build), dimensions)
        found = wrong.values_list("content_type_id", "object_id", "position").first()
        if found is not None:
            content_type_id, object_id, position = found
            raise InvalidVectorError(
                self.index_name,
                _("chunk %(position)s of object %(object)s (build %(build)s)")
                % {
                    "position": position,
                    "object": f"{content_type_id}/{object_id}",
                    "build": build,
                },
                _(
                    "does not have the %(dimensions)s dimensions the build is activated with"  # noqa: E501
                )
                % {"dimensions": dimensions},
            )

    # -- state -------------------------------------------------------------

    def state(self) -> IndexState | None:
        return IndexState.objects.filter(index_name=self.index_name).first()

    def chunks(self, build: int) -> Any:
        return self.model.objects.filter(index_name=self.index_name, build=build)

    def keys(self, state: IndexState | None) -> set[Key]:
        if state is None:
            return set()
        return set(
            self.chunks(state.active_build).values_list(
                "content_type_id", "object_id", "position", "content_hash"
            )
        )

    def inspect(self, state: IndexState | None) -> StoredBuild:
        """The active build in one pass: its keys counted, the content
        hashes whose vectors can be reused, and how many of its vectors are
        invalid (no vector is kept in memory)."""
        found = StoredBuild()
        if state is None:
            return found
        fields: tuple[str, ...] = (
            "pk",
            "content_type_id",
            "object_id",
            "position",
            "content_hash",
        )
        if self.filters_in_engine:
            fields += ("path", "locale_id")
            found.attributes = {}
        chunks = self.chunks(state.active_build)
        if self._vectors_fit(state):
            # Only the keys: reading a vector (or its length) costs far more.
            rows: Iterable[tuple] = (
                (*values, True)
                for values in chunks.values_list(*fields).iterator(chunk_size=2_000)
            )
        else:
            rows = self._validity_rows(chunks, fields, state.dimensions)
        # Where a valid vector of each hash is, for vectors_by_hash.
        places: dict[str, Any] = {}
        for pk, *key, valid in rows:
            if found.attributes is not None:
                *key, path, locale_id = key
                found.attributes[(key[0], key[1])] = (path, locale_id)
            found.count(tuple(key), valid)
            if valid:
                places[key[3]] = pk
        self._places = (state.active_build, places)
        return found

    def vectors_by_hash(
        self,
        state: IndexState | None,
        hashes: Iterable[str] | None = None,
        *,
        builds: Iterable[int] = (),
    ) -> dict[str, bytes]:
        """Valid stored vectors by content hash (float32 bytes), for reuse:
        from the active build and from ``builds`` (one being written). An
        invalid one is left out: its chunk is embedded again.

        After :meth:`inspect` of the same build, the rows it found for
        ``hashes`` are read by primary key (no column indexes the hashes: a
        search by hash reads the whole build); the hashes they no longer
        give (rows replaced meanwhile) are searched for as usual."""
        numbers = list(builds)
        if state is not None:
            numbers.append(state.active_build)
        if not numbers:
            return {}
        chunks = self.model.objects.filter(
            index_name=self.index_name, build__in=numbers
        )
        dimensions = state.dimensions if state is not None else None
        found: dict[str, bytes] = {}

        def read(rows: Any, wanted: Collection[str] | None) -> None:
            for content_hash, data in self._vector_rows(rows, ["content_hash"]):
                if content_hash in found or (
                    wanted is not None and content_hash not in wanted
                ):
                    continue
                size = dimensions or len(data) // 4
                if not self.vector_problem(data, size):
                    found[content_hash] = data

        if hashes is None:
            read(chunks, None)
            return found
        wanted = set(hashes)
        build, places = getattr(self, "_places", (None, {}))
        if build in numbers:
            pks = [places[digest] for digest in wanted if digest in places]
            for start in range(0, len(pks), 500):
                read(chunks.filter(pk__in=pks[start : start + 500]), wanted)
        rest = wanted - found.keys()
        if rest:
            read(chunks.filter(content_hash__in=list(rest)), rest)
        return found

    def first_texts(
        self, state: IndexState | None, keys: Iterable[tuple[int, str]]
    ) -> dict[tuple[int, str], str]:
        """The text of each object's first chunk (position 0) in the active
        build, by ``(content type id, object id)``."""
        if state is None:
            return {}
        rows = self._of_objects(state.active_build, keys).filter(position=0)
        return {
            (content_type_id, str(object_id)): text
            for content_type_id, object_id, text in rows.values_list(
                "content_type_id", "object_id", "text"
            )
        }

    def drop(self) -> None:
        """Delete the index's rows and state: every build, as if it had never
        been built (a temporary index of ``evaluate_vector_index``)."""
        from wagtail_vector_index.models import IndexUpdateLease, PendingIndexUpdate

        # Each a single DELETE: no receiver listens to these models, so
        # Django does not read the rows (the vectors) first.
        self.model.objects.filter(index_name=self.index_name).delete()
        IndexState.objects.filter(index_name=self.index_name).delete()
        IndexUpdateLease.objects.filter(index_name=self.index_name).delete()
        PendingIndexUpdate.objects.filter(index_name=self.index_name).delete()
        self.forget()

    def forget(self) -> None:
        """Drop what this process holds in memory for the index."""

    # -- writing -----------------------------------------------------------

    def next_build(self, *, lease: Any = None) -> int:
        """A build number no rows use yet (unfinished builds are cleared).

        With ``lease`` (an :class:`~wagtail_vector_index.index.lease.IndexLease`
        held for this index) the number is reserved on the lease's row: never
        handed out twice, even to an update whose lease ran out while it was
        still writing.
        """
        state = self.state()
        active = state.active_build if state else 0
        # Rows of builds that never became active: interrupted runs.
        self.model.objects.filter(index_name=self.index_name).exclude(
            build=active
        ).delete()
        self._clear_unfinished(active)
        highest = self.model.objects.filter(index_name=self.index_name).aggregate(
            highest=Max("build")
        )["highest"]
        lowest = max(active, highest or 0)
        if lease is None:
            return lowest + 1
        return lease.reserve_build(lowest)

    def write_build(
        self, build: int, rows: Iterable[Any], *, dimensions: int | None = None
    ) -> None:
        """Write ``rows`` into ``build`` (not yet answering).

        Every vector must have ``dimensions`` values (without it, as many as
        the first row's) and no NaN or infinite value, or
        :class:`InvalidVectorError` is raised and the build cannot be
        activated.
        """
        self._bulk(build, self._checked(rows, dimensions, build))

    def _switch(
        self,
        build: int,
        *,
        model_id: str,
        dimensions: int,
        object_count: int,
        lease: Any = None,
        chunking: str = "",
        check: bool = True,
    ) -> IndexState:
        """Make ``build`` the answering one and drop the others' rows, in one
        transaction (after checking its vectors' dimensions, and that
        ``lease`` is still held)."""
        if check:
            self.check_build(build, dimensions)
        with transaction.atomic(using=self.using):
            if lease is not None:
                # First, a write: on SQLite it takes the write lock at once;
                # on PostgreSQL it locks the lease's row until the commit.
                lease.confirm()
            state = record_build(
                self.index_name,
                build,
                model_id=model_id,
                dimensions=dimensions,
                chunk_count=self.chunks(build).count(),
                object_count=object_count,
                chunking=chunking,
            )
            self.model.objects.filter(index_name=self.index_name).exclude(
                build=build
            ).delete()
        return state

    def touch(self, state: IndexState) -> None:
        state.save(update_fields=["updated_at"])

    def replace_object(
        self,
        state: IndexState,
        content_type_id: int,
        object_id: str,
        rows: Sequence[Any],
        *,
        dimensions: int | None = None,
        lease: Any = None,
    ) -> None:
        """Swap one object's chunks in the active build.

        The vectors must have ``dimensions`` values (by default the index's)
        and no NaN or infinite value: otherwise :class:`InvalidVectorError`
        and the object's chunks stay as they were.
        """
        self.apply_changes(
            state,
            {(content_type_id, object_id): rows},
            dimensions=dimensions,
            lease=lease,
        )

    def _of_objects(self, build: int, keys: Iterable[tuple[int, str]]) -> Any:
        """The rows of ``build`` belonging to the objects ``keys``."""
        by_type: dict[int, list[str]] = {}
        for content_type_id, object_id in keys:
            by_type.setdefault(int(content_type_id), []).append(str(object_id))
        wanted = Q()
        for content_type_id, object_ids in by_type.items():
            wanted |= Q(content_type_id=content_type_id, object_id__in=object_ids)
        chunks = self.chunks(build)
        return chunks.filter(wanted) if by_type else chunks.none()

    def apply_changes(
        self,
        state: IndexState,
        changes: Mapping[tuple[int, str], Sequence[Any]],
        *,
        dimensions: int | None = None,
        lease: Any = None,
    ) -> IndexState:
        """Swap the chunks of each object of ``changes`` (no rows: remove it)
        in the active build, in one transaction. Stored rows equal to new
        ones stay (see :meth:`_unchanged_rows`); the others are replaced.

        Every vector is checked first (``dimensions``, by default the
        index's): one that does not fit raises :class:`InvalidVectorError`
        and nothing changes. The state's counts follow without counting the
        whole build: only the changed objects' rows are read.

        Writers take turns on the index's ``IndexState`` row. A storage that
        can lock the objects themselves (:meth:`_lock_objects`) takes that
        row only once its rows are written, so that several transactions
        writing other objects insert their rows side by side
        (``write_concurrency``).
        """
        build = state.active_build
        size = dimensions or state.dimensions
        rows = [
            row
            for object_rows in changes.values()
            for row in self._checked(object_rows, size, build)
        ]
        added = {(row.content_type_id, str(row.object_id)) for row in rows}
        try:
            with transaction.atomic(using=self.using):
                late = self._lock_objects(sorted(changes))
                if not late:
                    self._lock_state(state, build, lease)
                elif (
                    IndexState.objects.filter(pk=state.pk)
                    .values_list("active_build", flat=True)
                    .first()
                    != build
                ):
                    raise _BuildMoved
                replaced = [key for key, object_rows in changes.items() if object_rows]
                written, stale, present = self._unchanged_rows(build, replaced, rows)
                gone = self._of_objects(
                    build,
                    [key for key, object_rows in changes.items() if not object_rows],
                )
                present |= {
                    (content_type_id, str(object_id))
                    for content_type_id, object_id in gone.values_list(
                        "content_type_id", "object_id"
                    ).distinct()
                }
                deleted, _ = gone.delete()
                for start in range(0, len(stale), 500):
                    batch = stale[start : start + 500]
                    deleted += self.model.objects.filter(pk__in=batch).delete()[0]
                self._bulk(build, written)
                if late:
                    self._lock_state(state, build, lease)
                self._changed(state, changes.keys())
                state.revision = new_revision()
                state.chunk_count = max(0, state.chunk_count - deleted + len(written))
                state.object_count = max(
                    0,
                    state.object_count - len(present - added) + len(added - present),
                )
                state.save(
                    update_fields=[
                        "revision",
                        "chunk_count",
                        "object_count",
                        "updated_at",
                    ]
                )
        except _BuildMoved:
            # A rebuild was activated meanwhile: change that one.
            state.refresh_from_db()
            return self.apply_changes(
                state, changes, dimensions=dimensions, lease=lease
            )
        return state

    def _lock_state(self, state: IndexState, build: int, lease: Any) -> None:
        """In the transaction: confirm ``lease``, lock the index's state row
        and read it again (the counts move on from the latest);
        :class:`_BuildMoved` if another build answers now."""
        if lease is not None:
            lease.confirm()
        IndexState.objects.select_for_update().filter(pk=state.pk).exists()
        state.refresh_from_db()
        if state.active_build != build:
            raise _BuildMoved

    def _lock_objects(self, keys: Sequence[tuple[int, str]]) -> bool:
        """Lock the objects ``keys`` (sorted) until the transaction ends, if
        the database can; ``False``: it cannot, and the state row is locked
        first instead, for the whole transaction."""
        return False

    def _unchanged_rows(
        self, build: int, keys: Sequence[tuple[int, str]], rows: Sequence[Any]
    ) -> tuple[list[Any], list[Any], set[tuple[int, str]]]:
        """The stored rows of the objects ``keys`` compared with their new
        ``rows`` (checked: vectors as float32 bytes): the rows to write, the
        primary keys of the stored rows to delete, and the objects found.

        A stored row equal to a new one (position, text, hash, attributes and
        vector, byte for byte) stays as it is and the new one is not written:
        after a small edit most chunks of an object are the same, and on
        pgvector each row written is an insertion into the build's HNSW
        graph, by far the dearest part of changing an object. Only these
        objects' vectors are read."""
        if not keys:
            return list(rows), [], set()
        fields = ["pk", "content_type_id", "object_id", "position", "text"]
        fields.append("content_hash")
        if self.filters_in_engine:
            fields += ["path", "locale_id"]
        stored: dict[tuple, list[Any]] = {}
        present: set[tuple[int, str]] = set()
        for pk, content_type_id, object_id, *values in self._vector_rows(
            self._of_objects(build, keys), fields
        ):
            present.add((content_type_id, str(object_id)))
            identity = (int(content_type_id), str(object_id), *values)
            stored.setdefault(identity, []).append(pk)
        written = []
        for row in rows:
            identity = (
                int(row.content_type_id),
                str(row.object_id),
                row.position,
                row.text,
                row.content_hash,
            )
            if self.filters_in_engine:
                identity += (getattr(row, "path", ""), getattr(row, "locale_id", None))
            kept = stored.get((*identity, row.vector))
            if kept:
                kept.pop()  # A row stored twice: the other copy goes.
            else:
                written.append(row)
        stale = [pk for pks in stored.values() for pk in pks]
        return written, stale, present

    def _changed(self, state: IndexState, keys: Iterable[tuple[int, str]]) -> None:
        """Called by :meth:`apply_changes` in its transaction, after the rows
        of ``keys`` were replaced (and before the new revision is saved)."""
