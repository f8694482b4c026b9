"""The default storage: the application database, searched with NumPy.

Vectors are stored as float32 bytes in ``EmbeddingChunk`` rows. A process
loads an index's vectors once into a normalised matrix and keeps it until the
index's ``revision`` changes; each search costs one small query for the
revision and a matrix product. Rows whose vectors do not fit the index
(stored before vectors were checked: another length, NaN or infinite values)
are left out of the matrix with a warning; ``update_vector_indexes`` embeds
them again.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models.functions import Length

from wagtail_vector_index.index.storage.base import ChunkTableStorage, vector_problem
from wagtail_vector_index.index.storage.types import ChunkRow, Hit
from wagtail_vector_index.models import EmbeddingChunk, IndexState
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


@dataclass
class _Loaded:
    revision: str
    build: int
    matrix: np.ndarray
    keys: list[tuple[int, str, int, str]]  # content type, object id, position, text
    _rows_by_key: dict[tuple[int, str], list[int]] | None = None

    def rows_for(self, wanted: Collection[tuple[int, str]]) -> np.ndarray:
        """The matrix rows of the chunks of ``wanted`` objects, in order."""
        if self._rows_by_key is None:
            by_key: dict[tuple[int, str], list[int]] = {}
            for row, key in enumerate(self.keys):
                by_key.setdefault((key[0], key[1]), []).append(row)
            self._rows_by_key = by_key
        rows = [row for key in wanted for row in self._rows_by_key.get(key, ())]
        return np.sort(np.fromiter(rows, dtype=np.intp, count=len(rows)))


class DatabaseStorage(ChunkTableStorage):
    """Vectors in the application database, searched in memory with NumPy."""

    model = EmbeddingChunk
    _cache: dict[str, _Loaded] = {}
    _lock = threading.Lock()

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

    # -- reading -----------------------------------------------------------

    def _loaded(self, state: IndexState) -> _Loaded:
        loaded = self._cache.get(self.index_name)
        if loaded is not None and loaded.revision == state.revision:
            return loaded
        with self._lock:
            chunks = self.chunks(state.active_build)
            # Rows are copied one by one into a matrix of the expected size
            # (no list of rows, no second copy): the peak is about the
            # matrix itself, 4 bytes per dimension per chunk.
            matrix = np.empty((chunks.count(), state.dimensions), dtype=np.float32)
            keys = []
            extra = []  # Rows added since the count (an object updated meanwhile).
            invalid = 0
            size = 4 * state.dimensions
            rows = chunks.order_by("pk").values_list(
                "content_type_id", "object_id", "position", "text", "vector"
            )
            for row in rows.iterator(chunk_size=2_000):
                if len(row[4]) != size:
                    invalid += 1  # Another length: it cannot be compared.
                    continue
                vector = np.frombuffer(row[4], dtype=np.float32)
                if len(keys) < len(matrix):
                    matrix[len(keys)] = vector
                else:
                    extra.append(vector)
                keys.append(row[:4])
            matrix = matrix[: len(keys)]
            if extra:
                matrix = np.vstack([matrix, *extra])
            # A NaN or an infinity makes its row's sum of squares NaN or
            # infinite (so might huge finite values: those rows are checked).
            squares = np.einsum("ij,ij->i", matrix, matrix)
            suspects = np.flatnonzero(~np.isfinite(squares))
            bad = [i for i in suspects if not np.isfinite(matrix[i]).all()]
            if bad:
                invalid += len(bad)
                keep = np.ones(len(keys), dtype=bool)
                keep[bad] = False
                matrix = matrix[keep]
                keys = [key for key, kept in zip(keys, keep, strict=True) if kept]
            if invalid:
                logger.warning(
                    'Vector index "%s": %s stored vectors do not fit the index '
                    "(not %s dimensions, or NaN or infinite values) and are left "
                    "out of searches. Run manage.py update_vector_indexes to "
                    "embed them again.",
                    self.index_name,
                    invalid,
                    state.dimensions,
                )
            loaded = _Loaded(
                revision=state.revision,
                build=state.active_build,
                matrix=normalise(matrix, in_place=True),
                keys=keys,
            )
            self._cache[self.index_name] = loaded
        return loaded

    def search(
        self,
        state: IndexState,
        vector: Sequence[float],
        limit: int,
        *,
        keys: Collection[tuple[int, str]] | None = None,
    ) -> list[Hit]:
        """The ``limit`` chunks most similar to ``vector`` (cosine), best
        first; with ``keys``, among the chunks of those objects only."""
        loaded = self._loaded(state)
        if not loaded.keys or limit <= 0:
            return []
        data = self.check_query(vector, state.dimensions)
        query = normalise(np.frombuffer(data, dtype=np.float32))
        if keys is None:
            rows = None
            scores = loaded.matrix @ query
        else:
            rows = loaded.rows_for(keys)
            if not len(rows):
                return []
            if len(rows) <= GATHER_SHARE * len(loaded.keys):
                scores = loaded.matrix[rows] @ query
            else:
                scores = (loaded.matrix @ query)[rows]
        count = min(limit, len(scores))
        best = np.argpartition(-scores, count - 1)[:count]
        best = best[np.argsort(-scores[best], kind="stable")]
        return [
            Hit(*loaded.keys[i if rows is None else rows[i]], score=float(scores[i]))
            for i in best
        ]

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
                )
                for row in rows
            ),
            batch_size=500,
        )

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
        dimensions; with ``lease``, only while it is still held.
        """
        return self._switch(
            build,
            model_id=model_id,
            dimensions=dimensions,
            object_count=object_count,
            lease=lease,
            chunking=chunking,
        )

    def forget(self) -> None:
        """Drop this process's in-memory copy."""
        self._cache.pop(self.index_name, None)
