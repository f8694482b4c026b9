"""The embedding cache: the same text embedded with the same model and
dimensions is sent to the provider once.

Vectors are kept in ``EmbeddingCacheEntry`` rows keyed by (model id,
dimensions, SHA-256 of the text), shared by every vector index and by the
callers of ``backend.with_cache()``: a second index over the same pages, or
an index rebuilt under a new name, takes its vectors from here instead of
calling the provider.

* :func:`lookup` reads entries in batches and marks them used (one bulk
  update per batch, only for entries not marked in the last few minutes);
* :func:`store` adds entries (existing ones are left as they are), and now
  and then removes the least recently used beyond
  ``EMBEDDING_CACHE["MAX_ENTRIES"]`` (:func:`evict`);
* :func:`clear` empties it (``manage.py clear_embedding_cache``).

Offline backends are not cached: they compute a vector for less than a
lookup costs. This module sits below the backends in the package's layers;
it reads the model through Django's app registry at call time.
"""

from __future__ import annotations

import datetime
import hashlib
import re
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.conf import settings
from django.utils import timezone

from wagtail_vector_index import conf, usage
from wagtail_vector_index.redaction import get_logger

if TYPE_CHECKING:
    import numpy as np

logger = get_logger(__name__)

ENTRY_MODEL = "wagtail_vector_index.EmbeddingCacheEntry"

#: Content hashes per lookup query, and rows per insert (well within
#: SQLite's limit of variables in one statement).
BATCH = 500

#: An entry read again within this time is not marked used again: a lookup
#: of entries read recently writes nothing.
TOUCH_AFTER = datetime.timedelta(minutes=5)

#: Entries a process adds between two checks of the cache's size (fewer for
#: a small ``MAX_ENTRIES``: a hundredth of it). A process checks at its first
#: store too, so the cache exceeds its bound by at most this many entries
#: per process.
CHECK_EVERY = 1_000

_HASH = re.compile(r"[0-9a-f]{64}")

#: Parameters that change the vectors a model returns without changing its
#: id or dimensions (Cohere's ``input_type``, Vertex AI's and Gemini's
#: ``task_type``). The key does not hold them, so calls sending one are not
#: cached: a query's vector is never served for a document's.
VECTOR_PARAMETERS = frozenset({"input_type", "task_type"})


def content_hash(text: str) -> str:
    """The key of ``text`` in the cache: SHA-256, hex (chunks' hash too)."""
    return hashlib.sha256(text.encode()).hexdigest()


def enabled() -> bool:
    """Whether ``EMBEDDING_CACHE["ENABLED"]`` is on (and there are Django
    settings, hence a database: a script using the backends alone has
    none)."""
    return settings.configured and conf.get_embedding_cache_enabled()


def applies(backend: Any) -> bool:
    """Whether ``backend``'s vectors go through the cache: it is enabled and
    the backend calls a provider."""
    return enabled() and not getattr(backend, "offline", False)


def _entries() -> Any:
    return apps.get_model(ENTRY_MODEL).objects


def _delete(field: str | None = None, values: list[Any] | None = None) -> int:
    """Delete the entries whose ``field`` is one of ``values`` (every entry
    without ``field``); returns how many.

    One ``DELETE`` statement: no receiver listens to this model and nothing
    points at it, so Django deletes without reading the rows (and their
    vectors) first. tests/test_fast_delete.py holds us to that.
    """
    entries = _entries().all()
    if field is not None:
        entries = entries.filter(**{f"{field}__in": values or []})
    return entries.delete()[0]


def lookup(
    model_id: str, dimensions: int, hashes: Iterable[str]
) -> dict[str, np.ndarray]:
    """The cached vectors of ``hashes`` (float32 arrays) by content hash;
    hashes not cached are left out. The entries found are marked used."""
    import numpy as np

    wanted = list(dict.fromkeys(hashes))
    found: dict[str, np.ndarray] = {}
    size = 4 * dimensions
    for start in range(0, len(wanted), BATCH):
        stale_before = timezone.now() - TOUCH_AFTER
        stale: list[int] = []
        rows = _entries().filter(
            model_id=model_id,
            dimensions=dimensions,
            content_hash__in=wanted[start : start + BATCH],
        )
        for pk, digest, data, used in rows.values_list(
            "pk", "content_hash", "vector", "last_used_at"
        ):
            if len(data) != size:
                continue  # Not written by store(): ignored.
            vector = np.frombuffer(bytes(data), dtype="<f4").astype(
                np.float32, copy=False
            )
            if not np.isfinite(vector).all():
                continue
            found[digest] = vector
            if used < stale_before:
                stale.append(pk)
        if stale:
            _entries().filter(pk__in=stale).update(last_used_at=timezone.now())
    return found


def cached_hashes(model_id: str, dimensions: int, hashes: Iterable[str]) -> set[str]:
    """Which of ``hashes`` are cached (no vector read, nothing marked used):
    for estimates."""
    wanted = list(dict.fromkeys(hashes))
    found: set[str] = set()
    for start in range(0, len(wanted), BATCH):
        found.update(
            _entries()
            .filter(
                model_id=model_id,
                dimensions=dimensions,
                content_hash__in=wanted[start : start + BATCH],
            )
            .values_list("content_hash", flat=True)
        )
    return found


def _vector_bytes(digest: Any, vector: Any, dimensions: int) -> bytes:
    import numpy as np

    if not isinstance(digest, str) or not _HASH.fullmatch(digest):
        raise ValueError(f"{digest!r} is not a SHA-256 content hash (hex).")
    values = np.asarray(vector)
    if values.shape != (dimensions,) or values.dtype.kind not in "fiu":
        raise ValueError(
            f"The vector of {digest} is not {dimensions} numbers "
            f"(shape {values.shape}, {values.dtype})."
        )
    with np.errstate(over="ignore"):
        values = values.astype("<f4", copy=False)
    if not np.isfinite(values).all():
        raise ValueError(f"The vector of {digest} holds NaN or infinite values.")
    return values.tobytes()


def store(model_id: str, dimensions: int, vectors: Mapping[str, Any]) -> int:
    """Add ``vectors`` (content hash -> vector of ``dimensions`` numbers) to
    the cache; entries already there are kept. Returns how many were given.

    Raises ``ValueError``, storing nothing, when a hash is not a SHA-256 hex
    digest or a vector has another shape or holds NaN or infinite values.
    """
    if not vectors:
        return 0
    data = {
        digest: _vector_bytes(digest, vector, dimensions)
        for digest, vector in vectors.items()
    }
    Entry = apps.get_model(ENTRY_MODEL)
    now = timezone.now()
    Entry.objects.bulk_create(
        [
            Entry(
                model_id=model_id,
                dimensions=dimensions,
                content_hash=digest,
                vector=value,
                created_at=now,
                last_used_at=now,
            )
            for digest, value in data.items()
        ],
        batch_size=BATCH,
        ignore_conflicts=True,
    )
    _added(len(data))
    return len(data)


_lock = threading.Lock()
#: Entries this process added since it last checked the size (``None``:
#: never checked: the first store checks).
_added_since_check: int | None = None


def _added(count: int) -> None:
    """Check the cache's size once enough entries were added (see
    :data:`CHECK_EVERY`): a ``COUNT`` now and then, not on every store."""
    global _added_since_check
    limit = conf.get_embedding_cache_max_entries()
    every = min(CHECK_EVERY, max(1, limit // 100))
    with _lock:
        if _added_since_check is not None:
            _added_since_check += count
            if _added_since_check < every:
                return
        _added_since_check = 0
    evict(limit)


def evict(max_entries: int | None = None) -> int:
    """Remove the least recently used entries beyond ``max_entries``
    (default: ``EMBEDDING_CACHE["MAX_ENTRIES"]``); returns how many."""
    if max_entries is None:
        max_entries = conf.get_embedding_cache_max_entries()
    excess = _entries().count() - max_entries
    removed = 0
    while excess > 0:
        oldest = list(
            _entries()
            .order_by("last_used_at", "pk")
            .values_list("pk", flat=True)[: min(excess, BATCH)]
        )
        if not oldest:
            break
        removed += _delete("id", oldest)
        excess -= len(oldest)
    return removed


def clear(model_id: str | None = None) -> int:
    """Remove every entry (only ``model_id``'s, if given); returns how many."""
    if model_id is None:
        return _delete()
    return _delete("model_id", [model_id])


# -- for the backends and the indexes -----------------------------------------


@dataclass(frozen=True)
class ModelCache:
    """The cache of one model and number of dimensions."""

    model_id: str
    dimensions: int

    def lookup(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        return lookup(self.model_id, self.dimensions, hashes)

    def cached_hashes(self, hashes: Iterable[str]) -> set[str]:
        return cached_hashes(self.model_id, self.dimensions, hashes)

    def store(self, vectors: Mapping[str, Any]) -> None:
        """:func:`store`, logging instead of raising: vectors the caller
        already has are never lost to the cache."""
        try:
            store(self.model_id, self.dimensions, vectors)
        except ValueError as error:
            logger.warning("Embedding cache: vectors not stored: %s", error)


def for_backend(
    backend: Any, parameters: Mapping[str, Any] | None = None
) -> ModelCache | None:
    """The cache of ``backend``'s model and dimensions, or ``None`` where
    the cache does not apply (see :func:`applies`) or the call's
    ``parameters`` (default: the backend's) set one of
    :data:`VECTOR_PARAMETERS`."""
    if not applies(backend):
        return None
    if parameters is None:
        parameters = backend.config.default_parameters
    if VECTOR_PARAMETERS.intersection(parameters):
        return None
    return ModelCache(backend.config.model_id, backend.embedding_output_dimensions)


def _misses(
    hashes: list[str], inputs: list[str], known: Mapping[str, Any]
) -> dict[str, str]:
    """The texts not in ``known`` by hash: each once, in input order."""
    misses: dict[str, str] = {}
    for digest, text in zip(hashes, inputs, strict=True):
        if digest not in known:
            misses.setdefault(digest, text)
    return misses


def _matrix(
    cache: ModelCache, hashes: list[str], known: Mapping[str, Any]
) -> np.ndarray:
    import numpy as np

    matrix = np.empty((len(hashes), cache.dimensions), dtype=np.float32)
    for row, digest in enumerate(hashes):
        matrix[row] = known[digest]
    return matrix


def embed_through(
    cache: ModelCache,
    inputs: list[str],
    embed: Callable[[list[str]], Any],
) -> np.ndarray:
    """The vectors of ``inputs`` as a float32 matrix in input order: those
    cached from the cache, the others (each text once) from ``embed(texts)``,
    then stored."""
    hashes = [content_hash(text) for text in inputs]
    known: dict[str, Any] = cache.lookup(hashes)
    misses = _misses(hashes, inputs, known)
    if misses:
        new = dict(zip(misses, embed(list(misses.values())), strict=True))
        cache.store(new)
        known.update(new)
    return _matrix(cache, hashes, known)


async def aembed_through(
    cache: ModelCache,
    inputs: list[str],
    embed: Callable[[list[str]], Awaitable[Any]],
) -> np.ndarray:
    """:func:`embed_through` for a coroutine function; the database work
    runs in a thread, never on the event loop's."""
    hashes = [content_hash(text) for text in inputs]
    known: dict[str, Any] = await usage.run_sync(cache.lookup, hashes)
    misses = _misses(hashes, inputs, known)
    if misses:
        new = dict(zip(misses, await embed(list(misses.values())), strict=True))
        await usage.run_sync(cache.store, new)
        known.update(new)
    return _matrix(cache, hashes, known)
