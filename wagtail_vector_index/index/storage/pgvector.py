"""Where vectors live for sites that outgrow NumPy: PostgreSQL with pgvector.

Select it with ``WAGTAIL_VECTOR_INDEX["STORAGE"] =
"wagtail_vector_index.index.storage.pgvector.PgvectorStorage"`` (or its
older path, ``wagtail_vector_index.index.pgvector.PgvectorStorage``) and install the app
``wagtail_vector_index.contrib.pgvector`` (its migration creates the
``vector`` extension and the table). See docs/pgvector.md.

How it works:

- Chunks go into one table (``PgvectorChunk``) with a dimension-less
  ``vector`` column, so indexes made with different embedding models (and
  dimensions) share it. ``IndexState`` records, as with the default storage,
  the model, the dimensions, the active build and a revision.
- An update writes a new build beside the active one. Activating it first
  builds an HNSW index (``vector_cosine_ops``) for exactly that build: a
  partial expression index on ``(embedding::vector(D))`` ``WHERE index_name =
  '...' AND build = N``. Then the state switches to the build in one
  transaction, and the old build's rows and HNSW index are dropped. Building
  the graph once over the complete build is much faster than inserting rows
  into it one by one, and an interrupted update leaves the old build and its
  index answering.
- A search is one SQL query, ``ORDER BY embedding::vector(D) <=> query
  LIMIT n`` with the same ``index_name`` and ``build`` conditions (written as
  literals), so the planner can prove the partial index applies and walk it.
  ``hnsw.ef_search`` is raised to ``n`` for the query (HNSW returns at most
  ``ef_search`` rows); above 1,000 rows the query is written so that it
  compares every vector (exact), as it does for more than 2,000 dimensions
  (pgvector cannot index those).

Nothing here imports NumPy or pgvector when the module is imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import re
import struct
import sys
from array import array
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import DataError, connections, models, router, transaction

from wagtail_vector_index.index.storage.base import ChunkTableStorage
from wagtail_vector_index.index.storage.types import Hit, Where
from wagtail_vector_index.models import IndexState
from wagtail_vector_index.redaction import get_logger

logger = get_logger(__name__)

APP = "wagtail_vector_index.contrib.pgvector"
STORAGE = "wagtail_vector_index.index.storage.pgvector.PgvectorStorage"
#: pgvector (0.5 to 0.8) indexes ``vector`` columns of up to 2,000 dimensions.
MAX_INDEXED_DIMENSIONS = 2000
#: pgvector's default and largest ``hnsw.ef_search``.
DEFAULT_EF_SEARCH = 40
MAX_EF_SEARCH = 1000
HNSW_PREFIX = "wvi_hnsw_"


class _VectorBytes(models.Func):
    """pgvector's binary form of a vector: exact, and cheaper than text."""

    function = "vector_send"
    output_field = models.BinaryField()


class _VectorDims(models.Func):
    function = "vector_dims"
    output_field = models.IntegerField()


def _float32_bytes(data: bytes | memoryview) -> bytes:
    """Native float32 bytes (what ``storage.to_bytes`` makes) from pgvector's
    binary form (``vector_send``): a 2-byte dimension count, 2 unused bytes,
    big-endian float32 values."""
    values = array("f")
    values.frombytes(bytes(data)[4:])
    if sys.byteorder == "little":
        values.byteswap()
    return values.tobytes()


def _binary_vector(data: bytes) -> bytes:
    """pgvector's binary form of native float32 bytes (what ``vector_recv``
    reads, and what a binary ``COPY`` sends for a ``vector`` column)."""
    values = array("f")
    values.frombytes(data)
    if sys.byteorder == "little":
        values.byteswap()
    return struct.pack(">HH", len(values), 0) + values.tobytes()


#: PostgreSQL types of the columns written by a binary ``COPY`` (its rows
#: must carry each column's own binary form), by Django's ``db_type``.
_COPY_TYPES = {"integer": "int4", "bigint": "int8", "text": "text"}


class _BinaryVector(bytes):
    """A vector already in pgvector's binary form, for :meth:`_bulk`."""


#: Tuples an HNSW walk under a scope's conditions may visit per row asked
#: for: with relaxed order the walk visits about ``limit / share`` tuples, so
#: a scope allowing at least 1 / WALK_PER_ROW of the build is found by the
#: walk; a narrower one (few rows) is compared exactly instead.
WALK_PER_ROW = 50


def _walk_settings(limit: int) -> dict[str, str]:
    """The settings of a walk of the HNSW index under a scope's conditions:
    iterative scans (relaxed order, the rows found sorted again), a bound on
    the tuples visited, and the planner kept to the HNSW index (its cost
    model, unaware of iterative scans, would compare every allowed vector
    instead, ten times slower for a site holding 10% of 100,000 chunks)."""
    return {
        "hnsw.iterative_scan": "relaxed_order",
        "hnsw.max_scan_tuples": str(max(2_000, WALK_PER_ROW * int(limit))),
        "enable_seqscan": "off",
        "enable_bitmapscan": "off",
        "enable_sort": "off",
    }


#: What those settings are put back to in the caller's transaction when they
#: were not set before.
_DEFAULTS = {
    "hnsw.iterative_scan": "off",
    "hnsw.max_scan_tuples": "20000",
    "enable_seqscan": "on",
    "enable_bitmapscan": "on",
    "enable_sort": "on",
}


def _prefix_pattern(path: str) -> str:
    """A ``LIKE`` pattern for the values starting with ``path``."""
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _site_condition(path: str) -> str:
    """The predicate of the HNSW index of the site whose root is at ``path``
    (the rows under it, and those of objects that are not pages): what
    :meth:`PgvectorStorage.where_sql` writes for a search of that site, with
    the pattern as a literal. psycopg sends a query's parameters inlined
    (client-side binding, Django's default), so the planner sees the same
    expression in both and may walk the site's index."""
    return f"(path = '' OR path LIKE {_literal(_prefix_pattern(path))})"


def _literal(value: str) -> str:
    """A PostgreSQL string literal (E'' form: right whatever the setting of
    standard_conforming_strings)."""
    if "\x00" in value:
        raise ValueError("PostgreSQL strings cannot contain NUL characters.")
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _vector_dumper(raw_connection: Any) -> Any:
    """The dumper of :class:`_BinaryVector` on one psycopg connection (made
    once per connection: it needs the ``vector`` type's oid there)."""
    dumper = getattr(raw_connection, "_wvi_vector_dumper", None)
    if dumper is None:
        from psycopg.adapt import Dumper
        from psycopg.pq import Format

        with raw_connection.cursor() as cursor:
            cursor.execute("SELECT 'vector'::regtype::oid")
            (oid,) = cursor.fetchone()

        class BinaryVectorDumper(Dumper):
            format = Format.BINARY

            def dump(self, obj: bytes) -> bytes:
                return obj

        BinaryVectorDumper.oid = oid
        raw_connection.adapters.register_dumper(_BinaryVector, BinaryVectorDumper)
        dumper = raw_connection._wvi_vector_dumper = BinaryVectorDumper
    return dumper


class PgvectorStorage(ChunkTableStorage):
    """Vectors in PostgreSQL, searched in SQL through pgvector HNSW indexes."""

    filters_in_engine = True

    #: HNSW parameters (pgvector's defaults): links per node, and the size of
    #: the candidate list while building. Subclass to change them.
    hnsw_m = 16
    hnsw_ef_construction = 64
    #: PostgreSQL's ``maintenance_work_mem`` while an HNSW index is built
    #: (``"1GB"``, say), set for that statement only; ``None`` keeps the
    #: server's (64 MB by default). Building is far slower once the graph
    #: outgrows it: about 4 bytes per dimension per chunk, plus links.
    hnsw_maintenance_work_mem: str | None = None

    #: A Wagtail site whose rows are at most this share of a build, and at
    #: least ``site_index_min_rows`` of them, gets an HNSW index of its own
    #: (pgvector 0.8 and newer): a walk of the whole build's index under a
    #: site's condition visits about ``limit / share`` rows, and comparing
    #: a site's vectors exactly costs as much from a few hundred rows on.
    site_index_max_share = 0.5
    site_index_min_rows = 200

    #: How many transactions an update in place writes at once, each on a
    #: connection of its own with its share of a group's objects: inserting
    #: a row into an HNSW graph is CPU work of the server's (about 10 ms at
    #: 1,536 dimensions and 100,000 rows), which one connection does on one
    #: core. Objects are locked one by one (advisory locks), so the writers
    #: take turns only to count. Inside a caller's transaction, one.
    write_concurrency = 2

    #: The revision of each index whose unfitting rows were last reported.
    _warned: dict[str, str] = {}

    def __init__(self, index_name: str, *, config: Any = None) -> None:
        super().__init__(index_name, config=config)
        if not apps.is_installed(APP):
            raise ImproperlyConfigured(
                f'WAGTAIL_VECTOR_INDEX["STORAGE"] is "{STORAGE}" but "{APP}" is not '
                f'in INSTALLED_APPS. Add "{APP}" to INSTALLED_APPS and run '
                "manage.py migrate (it creates the pgvector extension and the "
                "table), or remove STORAGE to keep vectors in the default storage."
            )
        from wagtail_vector_index.contrib.pgvector.models import PgvectorChunk

        self.model = PgvectorChunk
        self.using = router.db_for_write(PgvectorChunk)
        connection = connections[self.using]
        if connection.vendor != "postgresql":
            raise ImproperlyConfigured(
                f'WAGTAIL_VECTOR_INDEX["STORAGE"] is "{STORAGE}", which needs '
                f'PostgreSQL with the pgvector extension, but the database "'
                f'{self.using}" is {connection.display_name}. Use PostgreSQL, or '
                "remove STORAGE (and the app "
                f'"{APP}") to keep vectors in the default storage.'
            )
        if router.db_for_write(IndexState) != self.using:
            raise ImproperlyConfigured(
                f"{APP} needs its table and wagtail_vector_index's IndexState in "
                f"the same database (a database router sends them to "
                f'"{self.using}" and "{router.db_for_write(IndexState)}").'
            )

    # -- helpers -------------------------------------------------------------

    @property
    def connection(self) -> Any:
        return connections[self.using]

    def _table(self) -> str:
        return self.connection.ops.quote_name(self.model._meta.db_table)

    def _hnsw_prefix(self) -> str:
        digest = hashlib.sha256(self.index_name.encode()).hexdigest()[:16]
        return f"{HNSW_PREFIX}{digest}_"

    def hnsw_index_name(self, build: int) -> str:
        """The name of the HNSW index of one build (63 characters at most)."""
        return f"{self._hnsw_prefix()}{int(build)}"

    def hnsw_indexes(self) -> list[str]:
        """The HNSW indexes of this index that exist, any build."""
        prefix = self._hnsw_prefix()
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes "
                "WHERE schemaname = current_schema() AND tablename = %s",
                [self.model._meta.db_table],
            )
            names = [row[0] for row in cursor.fetchall()]
        return sorted(name for name in names if name.startswith(prefix))

    def site_index_name(self, build: int, path: str) -> str:
        """The name of the HNSW index of one build's rows of the site whose
        root page is at ``path``."""
        digest = hashlib.sha256(path.encode()).hexdigest()[:10]
        return f"{self.hnsw_index_name(build)}_s{digest}"

    def _valid_indexes(self) -> set[str]:
        """The HNSW indexes of this index that are complete (a concurrent
        build that was interrupted leaves an invalid one)."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE i.indisvalid AND i.indrelid = %s::regclass "
                "AND starts_with(c.relname, %s)",
                [self.model._meta.db_table, self._hnsw_prefix()],
            )
            return {row[0] for row in cursor.fetchall()}

    def _build_filter(self, build: int) -> str:
        # Literals, not parameters: the planner must see the values to prove
        # that the partial index of the build applies.
        return f"index_name = {_literal(self.index_name)} AND build = {int(build)}"

    def _concurrently(self) -> bool:
        """Whether DDL may run CONCURRENTLY (not in a transaction): then
        building or dropping an index does not block writes to the table."""
        connection = self.connection
        return connection.get_autocommit() and not connection.in_atomic_block

    # -- reading ---------------------------------------------------------------

    def search_sql(
        self,
        state: IndexState,
        vector: Sequence[float],
        limit: int,
        *,
        exact: bool | None = None,
        fitting_only: bool = False,
        filtered: bool = False,
        conditions: str = "",
        iterative: bool = False,
    ) -> str:
        """The query :meth:`search` runs (for EXPLAIN and the curious).

        ``exact`` (by default: when ``limit`` is more than HNSW can return)
        fences the ordering off from the HNSW index, so every vector of the
        build is compared. ``fitting_only`` leaves out rows of other
        dimensions (whose cast would fail), at the cost of reading each
        vector twice. ``filtered`` joins the rows to two array parameters,
        the content type ids and object ids a search may return, and
        compares every vector among them (HNSW filtered afterwards would
        return fewer than ``limit`` for a narrow filter). ``conditions``
        (SQL with ``%s`` parameters, from :meth:`where_sql`) restrict the
        rows further; with ``iterative`` the HNSW index is walked under them
        (pgvector 0.8's iterative index scans, relaxed order, so the rows
        found are sorted again), else every vector they allow is compared.
        """
        from wagtail_vector_index.contrib.pgvector.fields import to_text

        dimensions = int(state.dimensions)
        cast = f"vector({dimensions})"
        query = to_text(self.check_query(vector, dimensions))
        if exact is None:
            exact = limit > MAX_EF_SEARCH
        # Only quoted literals, integers and formatted floats are interpolated.
        select = (
            "SELECT content_type_id, object_id, position, text, "
            f"embedding::{cast} <=> '{query}'::{cast} AS distance "
        )
        where = self._build_filter(state.active_build)
        if fitting_only:
            where = f"{where} AND vector_dims(embedding) = {dimensions:d}"
        if conditions:
            where = f"{where} AND {conditions}"
            exact = exact or not iterative
        source = self._table()
        if iterative and not filtered and not exact:
            inner = (
                f"{select}FROM {source} WHERE {where} ORDER BY distance LIMIT {limit:d}"  # noqa: E501, S608
            )
            outer = "SELECT * FROM candidates ORDER BY distance"
            return f"WITH candidates AS MATERIALIZED ({inner}) {outer}"
        if filtered:
            exact = True
            source = (
                f"{source} JOIN unnest(%s::int[], %s::text[]) AS allowed(ct, oid) "
                "ON content_type_id = allowed.ct AND object_id = allowed.oid"
            )
        candidates = f"{select}FROM {source} WHERE {where}"
        if exact:
            outer = f"SELECT * FROM candidates ORDER BY distance LIMIT {limit:d}"  # noqa: S608
            return f"WITH candidates AS MATERIALIZED ({candidates}) {outer}"
        return f"{candidates} ORDER BY distance LIMIT {limit:d}"

    def where_sql(self, where: Where | None) -> tuple[str, list[Any]]:
        """``where``'s path and locale conditions as SQL and its parameters
        (``""`` for none): the columns ``path`` and ``locale_id``."""
        if where is None:
            return "", []
        parts: list[str] = []
        params: list[Any] = []
        if where.paths is not None:
            # The shape of _site_condition(): for a site's search, the
            # planner then proves that the site's HNSW index applies.
            likes = " OR ".join(["path LIKE %s"] * len(where.paths))
            parts.append(f"(path = '' OR {likes})" if likes else "path = ''")
            params += [_prefix_pattern(path) for path in where.paths]
        if where.excluded_paths:
            likes = " OR ".join(["path LIKE %s"] * len(where.excluded_paths))
            parts.append(f"NOT ({likes})")
            params += [_prefix_pattern(path) for path in where.excluded_paths]
        if where.locale_id is not None:
            parts.append("(locale_id = %s OR locale_id IS NULL)")
            params.append(int(where.locale_id))
        return " AND ".join(parts), params

    def iterative_scans(self) -> bool:
        """Whether pgvector here has iterative index scans (0.8 or newer),
        which keep the HNSW index in use under a ``WHERE`` filter."""
        connection = self.connection
        known = getattr(connection, "_wvi_iterative_scans", None)
        if known is None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
                )
                row = cursor.fetchone()
            numbers = re.findall(r"\d+", row[0] if row else "")
            version = tuple(int(number) for number in numbers[:2])
            known = connection._wvi_iterative_scans = version >= (0, 8)
        return known

    def search(
        self,
        state: IndexState,
        vector: Sequence[float],
        limit: int,
        *,
        keys: Collection[tuple[int, str]] | None = None,
        where: Where | None = None,
    ) -> list[Any]:
        """The ``limit`` chunks most similar to ``vector`` (cosine), best
        first; with ``keys``, among the chunks of those objects only; with
        ``where``, among the chunks it allows, filtered in SQL.

        Under a path or locale condition, pgvector 0.8 and newer walk the
        HNSW index until ``limit`` rows pass (iterative index scans); when
        the walk stops short (``hnsw.max_scan_tuples``), and on older
        pgvector, every vector the conditions allow is compared instead.
        """
        if where is not None and where.keys is not None:
            keys = where.keys if keys is None else set(keys) & where.keys
        if limit <= 0 or (keys is not None and not keys):
            return []
        filtered = keys is not None
        params: list[Any] = []
        if filtered:
            params = [[int(key[0]) for key in keys], [str(key[1]) for key in keys]]
        conditions, condition_params = self.where_sql(where)
        params += condition_params
        iterative = bool(conditions) and not filtered and self.iterative_scans()
        try:
            rows = self._scoped_rows(
                state, vector, limit, params, filtered, conditions, iterative
            )
        except DataError:
            # "expected N dimensions, not M": a row that does not fit, stored
            # before vectors were checked (see the module's docstring).
            invalid = self._wrong_dimensions(
                self.chunks(state.active_build), state.dimensions
            ).count()
            if not invalid:
                raise
            if self._warned.get(self.index_name) != state.revision:
                self._warned[self.index_name] = state.revision
                logger.warning(
                    'Vector index "%s": %s stored vectors do not have the '
                    "index's %s dimensions and are left out of searches. Run "
                    "manage.py update_vector_indexes to embed them again.",
                    self.index_name,
                    invalid,
                    state.dimensions,
                )
            rows = self._scoped_rows(
                state,
                vector,
                limit,
                params,
                filtered,
                conditions,
                iterative,
                fitting_only=True,
            )
        return [
            Hit(
                content_type_id,
                object_id,
                position,
                text,
                # A zero vector has no direction: NaN distance, no similarity.
                score=0.0 if distance is None or math.isnan(distance) else 1 - distance,
            )
            for content_type_id, object_id, position, text, distance in rows
        ]

    def _scoped_rows(
        self,
        state: IndexState,
        vector: Sequence[float],
        limit: int,
        params: list[Any],
        filtered: bool,
        conditions: str,
        iterative: bool,
        *,
        fitting_only: bool = False,
    ) -> list[tuple]:
        """The rows of a search: walking the HNSW index under ``conditions``
        first when ``iterative``, comparing exactly if that found too few."""
        options = {
            "fitting_only": fitting_only,
            "filtered": filtered,
            "conditions": conditions,
        }
        if iterative and limit <= MAX_EF_SEARCH:
            sql = self.search_sql(state, vector, limit, iterative=True, **options)
            rows = self._search_rows(sql, limit, params, iterative=True)
            if len(rows) >= limit:
                return rows
        sql = self.search_sql(state, vector, limit, **options)
        return self._search_rows(sql, limit, params)

    def _search_rows(
        self, sql: str, limit: int, params: list[Any], *, iterative: bool = False
    ) -> list[tuple]:
        connection = self.connection
        nested = connection.in_atomic_block
        if not iterative and (limit <= DEFAULT_EF_SEARCH or limit > MAX_EF_SEARCH):
            # In a transaction, a savepoint: a failing search (see search())
            # must not abort the caller's transaction.
            with (
                transaction.atomic(using=self.using)
                if nested
                else contextlib.nullcontext()
            ):
                with connection.cursor() as cursor:
                    cursor.execute(sql, params or None)
                    return cursor.fetchall()
        # HNSW returns at most hnsw.ef_search rows: raise it (never lower it)
        # for this query.
        with transaction.atomic(using=self.using), connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('hnsw.ef_search', true), "
                "set_config('hnsw.ef_search', GREATEST(%s, COALESCE(NULLIF("
                "current_setting('hnsw.ef_search', true), '')::int, %s))::text, "
                "true)",
                [int(limit), DEFAULT_EF_SEARCH],
            )
            previous = cursor.fetchone()[0]
            walk = _walk_settings(limit) if iterative else {}
            before: dict[str, str | None] = {}
            for name, value in walk.items():
                cursor.execute(
                    "SELECT current_setting(%s, true), set_config(%s, %s, true)",
                    [name, name, value],
                )
                before[name] = cursor.fetchone()[0]
            cursor.execute(sql, params or None)
            rows = cursor.fetchall()
            if nested:
                # In the caller's transaction the settings would last until
                # its end: put them back.
                cursor.execute(
                    "SELECT set_config('hnsw.ef_search', %s, true)",
                    [previous or str(DEFAULT_EF_SEARCH)],
                )
                for name, value in before.items():
                    cursor.execute(
                        "SELECT set_config(%s, %s, true)",
                        [name, value or _DEFAULTS[name]],
                    )
        return rows

    def object_vectors(
        self, state: IndexState, content_type_id: int, object_id: str
    ) -> list[Any]:
        """The vectors of one object's chunks that fit the index, in order."""
        import numpy as np

        rows = self.chunks(state.active_build).filter(
            content_type_id=content_type_id, object_id=object_id
        )
        return [
            np.frombuffer(data, dtype=np.float32)
            for (data,) in self._vector_rows(rows.order_by("position"), [])
            if not self.vector_problem(data, state.dimensions)
        ]

    def _vector_rows(self, queryset: Any, fields: Sequence[str]) -> Iterator[tuple]:
        rows = queryset.annotate(data=_VectorBytes("embedding")).values_list(
            *fields, "data"
        )
        for *values, data in rows.iterator(chunk_size=2_000):
            yield (*values, _float32_bytes(data))

    def _wrong_dimensions(self, queryset: Any, dimensions: int) -> Any:
        return queryset.annotate(dims=_VectorDims("embedding")).exclude(dims=dimensions)

    def _vectors_fit(self, state: IndexState) -> bool:
        """Whether the active build has its HNSW index, valid, on
        ``embedding::vector(D)`` with the state's dimensions: PostgreSQL
        computes that cast for every row it indexes (when the index is built,
        and for each row written after), and refuses a row of other
        dimensions, so every row of the build fits without being read (a
        vector is about 6 KB at 1,536 dimensions, stored out of line: reading
        their lengths reads them all)."""
        quote = self.connection.ops.quote_name
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT attribute.atttypmod FROM pg_index AS ix "
                "JOIN pg_attribute AS attribute "
                "ON attribute.attrelid = ix.indexrelid AND attribute.attnum = 1 "
                "WHERE ix.indexrelid = to_regclass(%s) "
                "AND ix.indrelid = to_regclass(%s) "
                "AND ix.indisvalid AND ix.indisready AND ix.indnatts = 1",
                [quote(self.hnsw_index_name(state.active_build)), self._table()],
            )
            row = cursor.fetchone()
        # A vector(D) column's type modifier is D.
        return row is not None and row[0] == int(state.dimensions)

    def _validity_rows(
        self, queryset: Any, fields: Sequence[str], dimensions: int
    ) -> Iterator[tuple]:
        # pgvector refuses NaN and infinities: the dimensions, read in SQL,
        # tell whether a vector fits, without sending it.
        rows = queryset.annotate(dims=_VectorDims("embedding")).values_list(
            *fields, "dims"
        )
        for *values, dims in rows.iterator(chunk_size=2_000):
            yield (*values, dims == dimensions)

    # -- writing ---------------------------------------------------------------

    _COLUMNS = (
        "index_name",
        "build",
        "content_type",
        "object_id",
        "position",
        "text",
        "content_hash",
        "path",
        "locale_id",
        "embedding",
    )

    def _copy_types(self) -> list[Any]:
        """The ``COPY`` types of :attr:`_COLUMNS` (the vector's by its oid)."""
        connection = self.connection
        types: list[Any] = []
        for name in self._COLUMNS[:-1]:
            db_type = self.model._meta.get_field(name).rel_db_type(connection)
            if name != "content_type":
                db_type = self.model._meta.get_field(name).db_type(connection)
            base = db_type.split("(")[0]
            types.append(_COPY_TYPES.get(base, "text"))  # varchar: as text
        types.append(_vector_dumper(connection.connection).oid)
        return types

    def _bulk(self, build: int, rows: Iterable[Any]) -> None:
        """Rows written with one binary ``COPY``: each vector in pgvector's
        binary form, no text and no Python floats on the way."""
        connection = self.connection
        connection.ensure_connection()
        meta = self.model._meta
        columns = ", ".join(
            connection.ops.quote_name(meta.get_field(name).column)
            for name in self._COLUMNS
        )
        sql = f"COPY {self._table()} ({columns}) FROM STDIN (FORMAT BINARY)"
        types = self._copy_types()
        rows = iter(rows)
        # Taken 500 at a time before each COPY: a row refused while checked
        # (InvalidVectorError) must not break off a COPY, which would abort
        # the transaction around it.
        while batch := list(itertools.islice(rows, 500)):
            with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
                copy.set_types(types)
                for row in batch:
                    copy.write_row(
                        (
                            self.index_name,
                            build,
                            row.content_type_id,
                            row.object_id,
                            row.position,
                            row.text,
                            row.content_hash,
                            getattr(row, "path", ""),
                            getattr(row, "locale_id", None),
                            # Float32 bytes, checked: in pgvector's form.
                            _BinaryVector(_binary_vector(row.vector)),
                        )
                    )

    def _clear_unfinished(self, active: int) -> None:
        # The HNSW indexes of builds that never became active.
        self._drop_hnsw_indexes(keep=self.hnsw_index_name(active))

    def create_hnsw_index(self, build: int, dimensions: int) -> str | None:
        """Build the HNSW index of one build (replacing a half-made one).

        ``None`` when pgvector cannot index that many dimensions: searches of
        the build then scan it exactly.
        """
        if dimensions > MAX_INDEXED_DIMENSIONS:
            logger.warning(
                'Vector index "%s": %s dimensions is more than pgvector can index '
                "(%s); searches scan every vector of the index.",
                self.index_name,
                dimensions,
                MAX_INDEXED_DIMENSIONS,
            )
            return None
        name = self.hnsw_index_name(build)
        self._create_hnsw(name, dimensions, self._build_filter(build))
        return name

    def create_site_indexes(self, build: int, dimensions: int) -> list[str]:
        """Give each Wagtail site holding a small share of ``build`` an HNSW
        index of its rows (``site_index_max_share``, ``site_index_min_rows``),
        and drop those of sites that are gone. Returns the names of the
        build's site indexes.

        A site's search walks its own index, as short as an unscoped walk of
        the whole build, where a walk of the build's index under the site's
        condition would visit ten times as many rows for a site holding 10%.
        Row counts are the planner's estimates: no scan of the build. Only on
        pgvector 0.8 and newer, whose iterative scans walk an index under a
        condition; older versions compare a site's vectors exactly.
        """
        if dimensions > MAX_INDEXED_DIMENSIONS or not self.iterative_scans():
            return []
        build_filter = self._build_filter(build)
        total = self._estimated_rows(build_filter)
        paths = self.site_paths()
        names = {self.site_index_name(build, path): path for path in paths}
        existing = self._valid_indexes()
        prefix = f"{self.hnsw_index_name(build)}_s"
        for name in sorted(existing):
            if name.startswith(prefix) and name not in names:
                self._drop_index(name)
        kept = []
        for name, path in names.items():
            if name in existing:
                # Once made, kept while the site exists: estimates near a
                # threshold must not build and drop it in turn.
                kept.append(name)
                continue
            condition = f"{build_filter} AND {_site_condition(path)}"
            rows = self._estimated_rows(condition)
            if self.site_index_min_rows <= rows <= self.site_index_max_share * total:
                self._create_hnsw(name, dimensions, condition)
                kept.append(name)
        return kept

    def site_paths(self) -> list[str]:
        """The tree paths of the root pages of the site's Wagtail sites."""
        site_model = apps.get_model("wagtailcore", "Site")
        return sorted(set(site_model.objects.values_list("root_page__path", flat=True)))

    def _estimated_rows(self, condition: str) -> float:
        """The planner's estimate of the rows of the table under
        ``condition`` (SQL with literals only)."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {self._table()} "  # noqa: S608
                f"WHERE {condition}"
            )
            plan = cursor.fetchone()[0]
        if isinstance(plan, str | bytes):
            plan = json.loads(plan)
        return float(plan[0]["Plan"]["Plan Rows"])

    def _create_hnsw(self, name: str, dimensions: int, condition: str) -> None:
        """Build the partial HNSW index ``name`` of the rows under
        ``condition`` (replacing a half-made one)."""
        quoted = self.connection.ops.quote_name(name)
        concurrently = " CONCURRENTLY" if self._concurrently() else ""
        if not concurrently:
            # In a transaction that wrote the rows: their foreign key checks
            # (deferred) must run first, or PostgreSQL refuses to index the
            # table ("pending trigger events").
            self.connection.check_constraints()
        # A concurrent build that was interrupted leaves an invalid index.
        self._drop_index(name)
        with self.connection.cursor() as cursor:
            with self._maintenance_work_mem(cursor):
                cursor.execute(
                    f"CREATE INDEX{concurrently} {quoted} ON {self._table()} "
                    f"USING hnsw ((embedding::vector({int(dimensions)})) "
                    "vector_cosine_ops) "
                    f"WITH (m = {int(self.hnsw_m)}, "
                    f"ef_construction = {int(self.hnsw_ef_construction)}) "
                    f"WHERE {condition}"
                )

    @contextmanager
    def _maintenance_work_mem(self, cursor: Any) -> Iterator[None]:
        """``hnsw_maintenance_work_mem`` for the statements inside, then the
        session's value again."""
        if not self.hnsw_maintenance_work_mem:
            yield
            return
        set_value = "SELECT set_config('maintenance_work_mem', %s, false)"
        cursor.execute("SELECT current_setting('maintenance_work_mem')")
        (previous,) = cursor.fetchone()
        cursor.execute(set_value, [str(self.hnsw_maintenance_work_mem)])
        try:
            yield
        except Exception:
            # In a transaction, PostgreSQL undoes the SET with the rollback
            # (and refuses any statement until then).
            if not self.connection.in_atomic_block:
                cursor.execute(set_value, [previous])
            raise
        cursor.execute(set_value, [previous])

    def _drop_hnsw_indexes(self, *, keep: str) -> None:
        """Drop this index's HNSW indexes but ``keep`` and its sites'."""
        for name in self.hnsw_indexes():
            if name != keep and not name.startswith(f"{keep}_s"):
                self._drop_index(name)

    def _drop_index(self, name: str) -> None:
        """``DROP INDEX IF EXISTS``, concurrently when not in a transaction
        (then it does not block writes to the table)."""
        concurrently = " CONCURRENTLY" if self._concurrently() else ""
        quoted = self.connection.ops.quote_name(name)
        with self.connection.cursor() as cursor:
            cursor.execute(f"DROP INDEX{concurrently} IF EXISTS {quoted}")

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
        """Make ``build`` the answering one and drop the others.

        Refused (:class:`InvalidVectorError`) if a row of the build has other
        dimensions; with ``lease``, only while it is still held. The HNSW
        index of the build is made first (the old build answers meanwhile);
        the switch itself is one short transaction.
        """
        self.check_build(build, dimensions)
        self.create_hnsw_index(build, dimensions)
        with self.connection.cursor() as cursor:
            # The estimates of the sites' shares need the new build's rows
            # in the statistics: the columns they read, not the vectors.
            cursor.execute(f"ANALYZE {self._table()} (index_name, build, path)")
        self.create_site_indexes(build, dimensions)
        state = self._switch(
            build,
            model_id=model_id,
            dimensions=dimensions,
            object_count=object_count,
            lease=lease,
            chunking=chunking,
            check=False,
        )
        self._drop_hnsw_indexes(keep=self.hnsw_index_name(build))
        # Fresh statistics: with the row counts of the old build (or none),
        # the planner may prefer sorting the whole build to walking the HNSW
        # index until autovacuum gets round to the table.
        with self.connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {self._table()}")
        return state

    def _lock_objects(self, keys: Sequence[tuple[int, str]]) -> bool:
        """Transaction-level advisory locks on the objects ``keys`` (in
        order: two writers never wait for each other in a circle), so that
        the state row can be locked last (see ``apply_changes``)."""
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(key)) "
                "FROM unnest(%s::text[]) WITH ORDINALITY AS k(key, n) ORDER BY n",
                [self.index_name, [f"{ct}:{oid}" for ct, oid in keys]],
            )
        return True

    def maintain(self, state: IndexState) -> None:
        """After an update in place: an HNSW index for each site that has
        none and now holds a small share of the build (a site added since
        the build was made), none left for sites that are gone."""
        self.create_site_indexes(state.active_build, state.dimensions)

    def forget(self) -> None:
        """Nothing to drop: this storage keeps no vectors in the process."""
