"""Vector indexes: chunk, embed, store, search and answer from content."""

from __future__ import annotations

import contextlib
import hashlib
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils.translation import gettext as _

from wagtail_vector_index import ai, embedding_cache, usage
from wagtail_vector_index.ai_utils.types import AIResponse, AIStreamingResponse
from wagtail_vector_index.exceptions import WagtailVectorIndexError
from wagtail_vector_index.index import conversation, hybrid, moving, rebuild, scope
from wagtail_vector_index.index.chunking import Chunk, chunk_text
from wagtail_vector_index.index.fields import EmbeddingField
from wagtail_vector_index.index.lease import DEFAULT_LEASE_SECONDS, IndexLease
from wagtail_vector_index.index.storage import ChunkRow, Hit, get_storage
from wagtail_vector_index.index.storage.database import to_bytes
from wagtail_vector_index.models import PendingIndexUpdate
from wagtail_vector_index.redaction import get_logger

logger = get_logger(__name__)

#: Changes when this package cuts texts differently (see
#: :meth:`VectorIndex.chunking_signature`).
CHUNKING_VERSION = 1


class IndexNeedsRebuildError(WagtailVectorIndexError):
    """The stored vectors were made by another model or with other dimensions."""


def _legacy_query_arguments(
    method: str, question: str | None, chat_kwargs: dict[str, Any]
) -> tuple[str, str | None]:
    """The question and chat alias of a :meth:`VectorIndex.query` call,
    accepting 0.10.0's ``query=`` and ``chat_backend_alias=`` (deprecated;
    removed from ``chat_kwargs``, which go to the provider)."""
    if "query" in chat_kwargs:
        if question is not None:
            raise TypeError(
                f"{method}() got the question twice: as question and as query= "
                "(0.10.0's name for it). Pass it once, as the first argument."
            )
        question = chat_kwargs.pop("query")
        warnings.warn(
            f"{method}(query=...) is deprecated: pass the question as the first "
            f"argument, {method}(question).",
            DeprecationWarning,
            stacklevel=3,
        )
    if question is None:
        raise TypeError(f"{method}() missing 1 required argument: 'question'")
    alias = chat_kwargs.pop("chat_backend_alias", None)
    if alias is not None:
        warnings.warn(
            f"{method}(chat_backend_alias=...) is deprecated: set the index's chat "
            'alias instead (vector_index_options = {"chat_alias": ...} on the '
            "model, or chat_alias on a VectorIndex subclass).",
            DeprecationWarning,
            stacklevel=3,
        )
    return question, alias


DEFAULT_PROMPT = (
    "Answer the question using only the sources below. If they do not contain "
    "the answer, say that you do not know. Be concise. Cite the sources you use "
    "by their numbers in square brackets, like [1].\n\n{context}"
)


@dataclass
class SearchResult:
    """An object found by a search, with its best matching chunk.

    ``score`` is the cosine similarity of that chunk in a vector search; in
    keyword and hybrid searches, the reciprocal rank fusion score (higher is
    better; not comparable with a similarity).
    """

    object: Any
    score: float
    text: str
    #: ``(content type id, object id)`` of the object.
    key: tuple[int, str] | None = field(default=None, repr=False, compare=False)


@dataclass
class QueryResponse:
    """An answer from the chat backend and the objects it was drawn from.

    ``citations`` are the numbers the answer cites (``[2]`` is
    ``sources[1]``), in order of first citation; ``question`` is what the
    sources were searched with (the standalone question condensed from a
    conversation, or the question itself).
    """

    answer: str
    sources: list[Any]
    response: AIResponse | None = None
    citations: list[int] = field(default_factory=list)
    question: str = ""

    @property
    def cited_sources(self) -> list[Any]:
        """The sources the answer cites, in order of first citation."""
        return [self.sources[number - 1] for number in self.citations]


@dataclass
class QueryStreamingResponse:
    """A streamed answer (iterate ``stream``) and its sources.

    ``citations`` (and ``cited_sources``) say what the answer read so far
    cites: complete once the stream is read to its end.
    """

    stream: AIStreamingResponse
    sources: list[Any]
    question: str = ""

    def __post_init__(self) -> None:
        self._text: list[str] = []
        self.stream = _Tee(self.stream, self._text)

    @property
    def citations(self) -> list[int]:
        return conversation.citations("".join(self._text), len(self.sources))

    @property
    def cited_sources(self) -> list[Any]:
        return [self.sources[number - 1] for number in self.citations]


class _Tee:
    """A streamed answer that keeps the text of its first choice as it is
    read (for the citations); everything else is the stream's."""

    def __init__(self, stream: AIStreamingResponse, text: list[str]) -> None:
        self._stream = stream
        self._text = text

    def __iter__(self) -> Iterator[Any]:
        for part in self._stream:
            if part["index"] == 0:
                self._text.append(part["content"])
            yield part

    async def __aiter__(self) -> Any:
        async for part in self._stream:
            if part["index"] == 0:
                self._text.append(part["content"])
            yield part

    def text(self) -> str:
        return "".join(part["content"] for part in self if part["index"] == 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@dataclass
class UpdateEstimate:
    """What an update will cost before it spends anything."""

    index_name: str
    objects: int
    chunks: int
    chunks_to_embed: int
    tokens_to_embed: int
    cost: float | None
    model_id: str
    #: Chunks to embed whose vectors the embedding cache holds: no provider
    #: call (not counted in ``chunks_to_embed`` and ``tokens_to_embed``).
    chunks_cached: int = 0


@dataclass
class UpdateReport:
    index_name: str
    objects: int = 0
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    unchanged: bool = False
    estimate: UpdateEstimate | None = None
    cancelled: bool = False
    #: Stored vectors found invalid (another length, NaN or infinite values)
    #: and replaced: embedded again, or taken from a valid copy.
    invalid: int = 0
    #: New chunks whose vectors came from the embedding cache (no provider
    #: call); ``embedded`` counts those the provider embedded.
    cached: int = 0
    #: Whether the changes went into the answering build (``False``: a
    #: complete new build replaced it).
    in_place: bool = False
    #: Objects whose chunks were written again, and objects removed.
    changed: int = 0
    removed: int = 0


@dataclass
class _Plan:
    objects: int = 0
    rows: list[tuple[int, str, Chunk]] = field(default_factory=list)
    reusable: set[str] = field(default_factory=set)  # content hashes stored
    pending: dict[str, str] = field(default_factory=dict)  # hash -> text
    stored_keys: Counter = field(default_factory=Counter)  # of the active build
    invalid: int = 0  # stored vectors that cannot be reused
    invalid_objects: set[tuple[int, str]] = field(default_factory=set)
    cached: set[str] = field(default_factory=set)  # pending, in the cache
    #: What scoped searches filter each object on: (path, locale id).
    attributes: dict[tuple[int, str], tuple[str, int | None]] = field(
        default_factory=dict
    )
    #: The same as stored, where the storage keeps them (else ``None``).
    stored_attributes: dict[tuple[int, str], tuple[str, int | None]] | None = None
    #: Where vectors come from before the provider: the embedding cache and,
    #: for an index moved to another storage, the former one (``None``:
    #: nowhere).
    sources: Any = None

    def changes(self) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
        """The objects whose stored chunks differ from the planned ones (or
        hold an invalid vector), in plan order, and the stored objects no
        longer planned."""
        # Each object's (position, hash) pairs, sorted: equal lists are equal
        # multisets (a chunk stored twice counts twice).
        planned: dict[tuple[int, str], list[tuple[int, str]]] = {}
        for content_type_id, object_id, chunk in self.rows:
            planned.setdefault((content_type_id, object_id), []).append(
                (chunk.position, chunk.content_hash)
            )
        stored: dict[tuple[int, str], list[tuple[int, str]]] = {}
        for (
            content_type_id,
            object_id,
            position,
            digest,
        ), count in self.stored_keys.items():
            stored.setdefault((content_type_id, object_id), []).extend(
                [(position, digest)] * count
            )
        for pairs in stored.values():
            pairs.sort()
        known = self.stored_attributes
        changed = [
            key
            for key, chunks in planned.items()
            if sorted(chunks) != stored.get(key)
            or key in self.invalid_objects
            or (known is not None and known.get(key) != self.attributes.get(key))
        ]
        removed = [key for key in stored if key not in planned]
        return changed, removed


def _maintain(storage: Any, state: Any) -> None:
    """A storage's upkeep after an update that wrote no new build (optional
    ``maintain(state)``: pgvector's HNSW indexes of sites added since)."""
    maintain = getattr(storage, "maintain", None)
    if maintain is not None and state is not None:
        maintain(state)


class VectorIndex:
    """An index over the objects of one or more querysets.

    Subclass it and implement :meth:`get_querysets`, or use
    :class:`~wagtail_vector_index.index.mixins.VectorIndexedMixin` on a model.
    Register custom indexes with
    :func:`~wagtail_vector_index.index.registry.register_index` so the
    ``update_vector_indexes`` command finds them.
    """

    #: A unique, stable name (the key of the stored vectors).
    name: str = ""
    embedding_alias = "default"
    chat_alias = "default"
    #: The longest chunk, in tokens (capped at the model's token limit).
    max_chunk_tokens = 512
    #: Tokens each chunk repeats from the end of the previous one.
    chunk_overlap = 32
    prompt = DEFAULT_PROMPT
    #: How :meth:`search` ranks by default: "vector" (similarity of
    #: embeddings), "keyword" (the site's Wagtail search backend) or "hybrid"
    #: (both, fused by reciprocal rank fusion).
    search_mode = hybrid.VECTOR
    #: Weights of the vector and the keyword ranking in a hybrid search.
    hybrid_weights: tuple[float, float] = (1.0, 1.0)
    #: The constant k of reciprocal rank fusion (``weight / (k + rank)``):
    #: larger values flatten the advantage of the top ranks.
    rrf_k = 60
    #: Index pages behind a login or group view restriction too (never those
    #: behind a password), so that searches given ``user=`` (or a request)
    #: find what that user may view; searches without a user still return
    #: public pages only. Off by default: their text is sent to the
    #: embedding provider and stored with the index.
    include_restricted = False
    #: Seconds an update's lease lasts unless refreshed (see
    #: :mod:`wagtail_vector_index.index.lease`): how long a process killed
    #: mid-update can block the index's updates from another host.
    update_lease_seconds = DEFAULT_LEASE_SECONDS
    #: An update changes the answering build in place when at most this
    #: share of the objects changed (or were removed); above it, and after a
    #: change of embedding model, dimensions or chunking, it writes a
    #: complete new build that replaces the old one at once.
    in_place_share = 0.25

    def __init__(self, name: str | None = None) -> None:
        if name:
            self.name = name
        if not self.name:
            raise ValueError(f"{type(self).__name__} needs a name.")

    @property
    def storage(self) -> Any:
        """Where the vectors live, as ``WAGTAIL_VECTOR_INDEX["STORAGE"]`` says."""
        return get_storage(self.name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    # -- what is indexed ----------------------------------------------------

    def get_querysets(self) -> Sequence[models.QuerySet]:
        raise NotImplementedError

    def get_embedding_fields(self, model: type[models.Model]) -> list[EmbeddingField]:
        return list(getattr(model, "embedding_fields", []))

    def indexable(self, queryset: models.QuerySet) -> models.QuerySet:
        """Only what the public may see: live, public pages by default.

        Applied when indexing and again to every search result, so a page
        unpublished or made private after indexing never shows up.
        """
        from wagtail.models import Page

        if issubclass(queryset.model, Page):
            if self.include_restricted:
                return scope.exclude_subtrees(
                    queryset.live(), scope.password_protected_paths()
                )
            queryset = queryset.live().public()
        return queryset

    def iter_objects(self) -> Iterator[Any]:
        for queryset in self.get_querysets():
            queryset = self.indexable(queryset)
            if hasattr(queryset, "specific"):
                queryset = queryset.specific()
            yield from queryset.order_by("pk").iterator(chunk_size=200)

    def covers(self, model: type) -> bool:
        """Whether objects of ``model`` belong in this index."""
        return any(issubclass(model, qs.model) for qs in self.get_querysets())

    def is_indexable(self, obj: Any) -> bool:
        model = type(obj)
        return any(
            issubclass(model, qs.model)
            and self.indexable(qs).filter(pk=obj.pk).exists()
            for qs in self.get_querysets()
        )

    # -- backends -----------------------------------------------------------

    @property
    def embedding_backend(self) -> Any:
        return ai.get_embedding_backend(self.embedding_alias)

    def chat_backend(
        self, *, site: Any = None, request: Any = None, alias: str | None = None
    ) -> Any:
        """The chat backend answering :meth:`query` (``alias`` overrides the
        index's ``chat_alias``)."""
        return ai.get_chat_backend(alias or self.chat_alias, site=site, request=request)

    # -- chunking -----------------------------------------------------------

    def chunks_for(self, obj: Any, backend: Any = None) -> list[Chunk]:
        backend = backend or self.embedding_backend
        fields = self.get_embedding_fields(type(obj))
        important = [(f.get_label(obj), f.get_text(obj)) for f in fields if f.important]
        body = [(f.get_label(obj), f.get_text(obj)) for f in fields if not f.important]
        return chunk_text(
            backend,
            important=important,
            body=body,
            max_tokens=min(self.max_chunk_tokens, backend.config.token_limit),
            overlap=self.chunk_overlap,
        )

    def chunking_signature(self, backend: Any = None) -> str:
        """What decides how texts are cut into chunks (the chunk size and
        overlap, and the ``chunks_for`` in use): a build made with another
        signature is replaced by a complete new build, never changed in
        place."""
        backend = backend or self.embedding_backend
        chunks_for = type(self).chunks_for
        parts = (
            CHUNKING_VERSION,
            min(self.max_chunk_tokens, backend.config.token_limit),
            self.chunk_overlap,
            f"{chunks_for.__module__}.{chunks_for.__qualname__}",
        )
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]

    # -- state checks -------------------------------------------------------

    def _check_state(self, backend: Any) -> Any:
        state = self.storage.state()
        if state is None:
            return None
        if (
            state.model_id != backend.config.model_id
            or state.dimensions != backend.embedding_output_dimensions
        ):
            raise IndexNeedsRebuildError(
                _(
                    'The vector index "%(index)s" was built with %(old_model)s '
                    "(%(old_dimensions)s dimensions) but the embedding backend is "
                    "now %(model)s (%(dimensions)s dimensions). Rebuild it: "
                    "manage.py update_vector_indexes"
                )
                % {
                    "index": self.name,
                    "old_model": state.model_id,
                    "old_dimensions": state.dimensions,
                    "model": backend.config.model_id,
                    "dimensions": backend.embedding_output_dimensions,
                }
            )
        return state

    def check_state(self) -> Any:
        """The stored state if the index can be searched now, found without
        calling the provider: ``None`` when the index was never built.

        Raises :class:`IndexNeedsRebuildError` when it was built with another
        model or other dimensions than the embedding backend has now.
        """
        return self._check_state(self.embedding_backend)

    # -- searching ----------------------------------------------------------

    def _objects_for(
        self, hits: Iterable[Hit], within: scope.Scope = scope.EVERYTHING
    ) -> dict[tuple[int, str], Any]:
        return self._objects_by_key(
            ((hit.content_type_id, hit.object_id) for hit in hits), within
        )

    def _objects_by_key(
        self, keys: Iterable[tuple[int, str]], within: scope.Scope = scope.EVERYTHING
    ) -> dict[tuple[int, str], Any]:
        by_type: dict[int, set[str]] = defaultdict(set)
        for content_type_id, object_id in keys:
            by_type[content_type_id].add(object_id)
        found: dict[tuple[int, str], Any] = {}
        for content_type_id, ids in by_type.items():
            model = ContentType.objects.get_for_id(content_type_id).model_class()
            if model is None:
                continue
            queryset = model._default_manager.filter(pk__in=ids)
            for obj in scope.restrict(self, queryset, within):
                found[(content_type_id, str(obj.pk))] = obj
        return found

    def _results(
        self,
        state: Any,
        vector: Sequence[float],
        limit: int,
        threshold: float,
        exclude: Iterable[tuple[int, str]] = (),
        within: scope.Scope = scope.EVERYTHING,
    ) -> list[SearchResult]:
        # Chunks, not objects, are ranked: ask for more than needed, keep each
        # object's best chunk, and drop objects no longer indexable (or not
        # visible to the scope's user).
        storage = self.storage
        if getattr(storage, "filters_in_engine", False):
            where = scope.where(self, within)
            if where is not None and where.keys is not None and not where.keys:
                return []

            def search(count: int) -> list[Hit]:
                return storage.search(state, vector, count, where=where)

        else:
            keys = scope.allowed_keys(self, within)
            if keys is not None and not keys:
                return []

            def search(count: int) -> list[Hit]:
                return storage.search(state, vector, count, keys=keys)

        excluded = set(exclude)
        wanted = limit * 4 + 8 + len(excluded)
        while True:
            hits = search(wanted)
            hits = [h for h in hits if h.score >= threshold]
            objects = self._objects_for(hits, within)
            results: list[SearchResult] = []
            seen: set[tuple[int, str]] = set()
            for hit in hits:
                key = (hit.content_type_id, hit.object_id)
                if key in seen or key in excluded or key not in objects:
                    continue
                seen.add(key)
                results.append(SearchResult(objects[key], hit.score, hit.text, key))
            if len(results) >= limit or len(hits) < wanted:
                return results[:limit]
            wanted *= 4

    @usage.labelled(usage.INDEX_SEARCH)
    def search_results(
        self,
        query: str,
        limit: int = 5,
        similarity_threshold: float = 0.0,
        *,
        mode: str | None = None,
        filter: Any = None,  # noqa: A002 (a public keyword argument)
        site: Any = None,
        request: Any = None,
        user: Any = None,
        locale: Any = None,
    ) -> list[SearchResult]:
        """Objects whose content is most similar to ``query``, with scores.

        ``mode`` (by default the index's ``search_mode``): "vector" ranks by
        the similarity of embeddings; "keyword" by the site's Wagtail search
        backend (no provider call); "hybrid" fuses both rankings
        (``hybrid_weights``, ``rrf_k``). ``similarity_threshold`` applies to
        the vector ranking.

        ``filter`` (a queryset of the indexed model, or a ``Q``) restricts
        the results: they are the best ``limit`` matches within it. With
        ``site`` (or ``request``), only that site's pages; with Wagtail's
        internationalisation on, the active language's (or ``locale``'s);
        only public pages, unless ``user`` (or the request's user) may view
        restricted ones (see ``include_restricted``).
        """
        mode = hybrid.check_mode(mode or self.search_mode)
        within = scope.make_scope(
            filter=filter, site=site, request=request, user=user, locale=locale
        )
        if mode != hybrid.VECTOR and not self._keyword_searchable():
            mode = hybrid.VECTOR  # Logged (and W012 in manage.py check).
        backend = self.embedding_backend
        state = self._check_state(backend)
        if not query.strip():
            return []
        if mode == hybrid.KEYWORD:
            return self._keyword_results(state, query, limit, within)
        if state is None:
            return []
        (vector,) = backend.embed_matrix([query])
        if mode == hybrid.VECTOR:
            return self._results(
                state, vector, limit, similarity_threshold, within=within
            )
        return self._hybrid_results(
            state, query, vector, limit, similarity_threshold, within
        )

    def _keyword_searchable(self) -> bool:
        """Whether any model of the index has Wagtail ``search_fields``;
        without, keyword and hybrid searches rank by vector (logged)."""
        if any(hybrid.keyword_searchable(q.model) for q in self.get_querysets()):
            return True
        hybrid.warn_once(
            self.name,
            "Vector index %r: none of its models has search_fields; keyword and "
            "hybrid searches rank by vector alone.",
        )
        return False

    def _keyword_results(
        self, state: Any, query: str, limit: int, within: scope.Scope
    ) -> list[SearchResult]:
        ranking = hybrid.keyword_ranking(self, query, within, limit)
        return self._fused(state, [ranking], (1.0,), limit, {}, within)

    def _hybrid_results(
        self,
        state: Any,
        query: str,
        vector: Any,
        limit: int,
        threshold: float,
        within: scope.Scope,
    ) -> list[SearchResult]:
        depth = limit * 4 + 8
        found = self._results(state, vector, depth, threshold, within=within)
        ranking = hybrid.keyword_ranking(self, query, within, depth)
        by_key = {result.key: result for result in found}
        return self._fused(
            state,
            [list(by_key), ranking],
            self.hybrid_weights,
            limit,
            by_key,
            within,
        )

    def _fused(
        self,
        state: Any,
        rankings: list[list[tuple[int, str]]],
        weights: Sequence[float],
        limit: int,
        known: dict[Any, SearchResult],
        within: scope.Scope,
    ) -> list[SearchResult]:
        """The best ``limit`` objects of the fused rankings; ``known`` holds
        the results of the vector ranking (object and best chunk)."""
        fused = hybrid.fuse(rankings, weights, self.rrf_k)
        missing = [key for key, _ in fused if key not in known]
        objects = self._objects_by_key(missing, within) if missing else {}
        texts = self._first_texts(state, [k for k in missing if k in objects])
        results = []
        for key, score in fused:
            if key in known:
                results.append(replace(known[key], score=score))
            elif key in objects:
                results.append(
                    SearchResult(objects[key], score, texts.get(key, ""), key)
                )
            if len(results) == limit:
                break
        return results

    def _first_texts(
        self, state: Any, keys: list[tuple[int, str]]
    ) -> dict[tuple[int, str], str]:
        """The text of each object's first stored chunk (objects found by
        keyword alone have no matching chunk)."""
        if state is None or not keys:
            return {}
        return self.storage.first_texts(state, keys)

    @usage.labelled(usage.INDEX_SEARCH)
    def search(
        self,
        query: str,
        limit: int = 5,
        similarity_threshold: float = 0.0,
        **scope_kwargs: Any,
    ) -> list[Any]:
        """The objects most similar to ``query``, best first (the keyword
        arguments of :meth:`search_results`)."""
        results = self.search_results(
            query, limit, similarity_threshold, **scope_kwargs
        )
        return [r.object for r in results]

    @usage.labelled(usage.INDEX_SEARCH)
    def find_similar(
        self,
        obj: Any,
        limit: int = 5,
        include_self: bool = False,
        *,
        embed_missing: bool = True,
        filter: Any = None,  # noqa: A002 (a public keyword argument)
        site: Any = None,
        request: Any = None,
        user: Any = None,
        locale: Any = None,
    ) -> list:
        """Objects similar to ``obj`` (by the mean of its chunks' vectors),
        restricted as :meth:`search_results` says.

        An object that is not in the index is embedded on the fly, unless
        ``embed_missing=False`` (say, on a page view: then nothing is found
        and no provider is called).
        """
        results = self.similar_results(
            obj,
            limit,
            include_self=include_self,
            embed_missing=embed_missing,
            filter=filter,
            site=site,
            request=request,
            user=user,
            locale=locale,
        )
        return [r.object for r in results]

    @usage.labelled(usage.INDEX_SEARCH)
    def similar_results(
        self,
        obj: Any,
        limit: int = 5,
        *,
        include_self: bool = False,
        exclude: Iterable[Any] = (),
        stored: bool = True,
        embed_missing: bool = True,
        filter: Any = None,  # noqa: A002 (a public keyword argument)
        site: Any = None,
        request: Any = None,
        user: Any = None,
        locale: Any = None,
    ) -> list[SearchResult]:
        """:meth:`find_similar` with scores (the cosine similarity of each
        object's best chunk to the mean of ``obj``'s vectors).

        ``stored=False`` embeds ``obj`` as it is now (an unsaved object, or a
        page with an editor's unsaved changes: the editor's related pages)
        instead of using the vectors stored for it. ``exclude``: objects (or
        ``(content type id, object id)`` keys) never returned, besides
        ``obj`` itself unless ``include_self``.
        """
        within = scope.make_scope(
            filter=filter, site=site, request=request, user=user, locale=locale
        )
        backend = self.embedding_backend
        state = self._check_state(backend)
        if state is None:
            return []
        excluded = {self._key(item) for item in exclude}
        vectors: list[Any] = []
        if obj.pk is not None:
            key = self._key(obj)
            if not include_self:
                excluded.add(key)
            if stored:
                vectors = self.storage.object_vectors(state, *key)
        if not vectors and (embed_missing or not stored):
            texts = [chunk.text for chunk in self.chunks_for(obj, backend)]
            vectors = list(backend.embed_matrix(texts)) if texts else []
        if not vectors:
            return []
        mean = np.mean(np.vstack(vectors), axis=0)
        return self._results(state, mean, limit, -1.0, exclude=excluded, within=within)

    @staticmethod
    def _key(item: Any) -> tuple[int, str]:
        """The ``(content type id, object id)`` an object is stored under (a
        page's under its specific type)."""
        if isinstance(item, tuple):
            return int(item[0]), str(item[1])
        content_type_id = getattr(item, "content_type_id", None)
        from wagtail.models import Page

        if not isinstance(item, Page) or content_type_id is None:
            content_type_id = ContentType.objects.get_for_model(item).pk
        return content_type_id, str(item.pk)

    # -- answering ----------------------------------------------------------

    #: With a conversation's ``history``, search with a standalone question
    #: rewritten from it (one extra chat call); ``query(condense=...)``
    #: decides per call.
    condense_history = True

    def _messages(
        self,
        question: str,
        results: list[SearchResult],
        history: list[dict[str, str]] = (),  # type: ignore[assignment]
    ) -> list[dict]:
        context = conversation.context([result.text for result in results])
        return [
            {"role": "system", "content": self.prompt.format(context=context)},
            *history,
            {"role": "user", "content": question},
        ]

    def _condenses(self, history: list[dict[str, str]], condense: bool | None) -> bool:
        """Whether a query with ``history`` searches with a rewritten question."""
        return bool(history) and (
            self.condense_history if condense is None else condense
        )

    def _answer(
        self,
        question: str,
        sources_limit: int,
        *,
        stream: bool,
        alias: str | None,
        turns: list[dict[str, str]],
        condense: bool | None,
        chat_kwargs: dict[str, Any],
        **scope_kwargs: Any,
    ) -> Generator[tuple[Any, dict[str, Any]], Any, Any]:
        """The one core of :meth:`query` and :meth:`aquery`: the database
        work (the site's backend, the search) is done here, the chat calls
        are handed out. Yields ``(backend, keyword arguments of its chat
        call)`` and is sent the reply; returns the query's response.
        ``scope_kwargs`` are the search's (``site``, ``request``, ``user``,
        ``locale``, ``filter``, ``mode``): never sent to the provider."""
        backend = self.chat_backend(
            site=scope_kwargs["site"], request=scope_kwargs["request"], alias=alias
        )
        searched = question
        if self._condenses(turns, condense):
            # With a history, search with the standalone question the chat
            # backend rewrites it as.
            reply = yield (
                backend,
                {
                    "messages": conversation.condense_messages(turns, question),
                    **_condense_kwargs(chat_kwargs),
                },
            )
            searched = conversation.standalone_question(reply.text, question)
        results = self.search_results(searched, sources_limit, **scope_kwargs)
        messages = self._messages(question, results, turns)
        sources = [r.object for r in results]
        if stream:
            reply = yield backend, {"messages": messages, "stream": True, **chat_kwargs}
            return QueryStreamingResponse(reply, sources, searched)
        reply = yield backend, {"messages": messages, **chat_kwargs}
        cited = conversation.citations(reply.text, len(sources))
        return QueryResponse(reply.text, sources, reply, cited, searched)

    @usage.labelled(usage.INDEX_QUERY)
    def query(
        self,
        question: str | None = None,
        sources_limit: int = 5,
        *,
        stream: bool = False,
        site: Any = None,
        request: Any = None,
        mode: str | None = None,
        filter: Any = None,  # noqa: A002 (a public keyword argument)
        user: Any = None,
        locale: Any = None,
        history: Sequence[dict[str, str]] | None = None,
        condense: bool | None = None,
        **chat_kwargs: Any,
    ) -> QueryResponse | QueryStreamingResponse:
        """Answer ``question`` from the most relevant content.

        ``history`` holds the conversation's earlier turns (``{"role":
        "user" | "assistant", "content": ...}``, oldest first): the answer is
        written with them, and the sources are searched with a standalone
        question rewritten from them (one extra chat call; ``condense=False``
        or the index's ``condense_history = False`` searches with the
        question as it is). The answer cites its sources by number
        (``response.citations``, ``response.cited_sources``).

        The chat backend gets the matching chunks as context (with the site's
        parameters when ``site`` or ``request`` is given); the answer comes
        back with the source objects. ``stream=True`` returns the answer as a
        stream. The sources are restricted as :meth:`search_results` says
        (``filter``, ``site`` / ``request``, ``user``, ``locale``).

        0.10.0's ``query=`` (the question) and ``chat_backend_alias=`` still
        work for one release, with a ``DeprecationWarning``.
        """
        question, alias = _legacy_query_arguments("query", question, chat_kwargs)
        steps = self._answer(
            question,
            sources_limit,
            stream=stream,
            alias=alias,
            turns=conversation.check_history(history),
            condense=condense,
            chat_kwargs=chat_kwargs,
            site=site,
            request=request,
            mode=mode,
            filter=filter,
            user=user,
            locale=locale,
        )
        with contextlib.closing(steps):
            done, step = _advance(steps)
            while not done:
                backend, call = step
                done, step = _advance(steps, backend.chat(**call))
        return step

    @usage.labelled(usage.INDEX_QUERY)
    async def aquery(
        self,
        question: str | None = None,
        sources_limit: int = 5,
        *,
        stream: bool = False,
        site: Any = None,
        request: Any = None,
        mode: str | None = None,
        filter: Any = None,  # noqa: A002 (a public keyword argument)
        user: Any = None,
        locale: Any = None,
        history: Sequence[dict[str, str]] | None = None,
        condense: bool | None = None,
        **chat_kwargs: Any,
    ) -> QueryResponse | QueryStreamingResponse:
        """Asynchronous :meth:`query`, with the same arguments. The chat
        calls are made on the event loop; the database work (the request's
        site and user, the site's overrides, the search) in a thread."""
        from asgiref.sync import sync_to_async

        question, alias = _legacy_query_arguments("aquery", question, chat_kwargs)
        steps = self._answer(
            question,
            sources_limit,
            stream=stream,
            alias=alias,
            turns=conversation.check_history(history),
            condense=condense,
            chat_kwargs=chat_kwargs,
            site=site,
            request=request,
            mode=mode,
            filter=filter,
            user=user,
            locale=locale,
        )
        advance = sync_to_async(_advance)
        # (Closing runs nothing of the core's: no database work.)
        with contextlib.closing(steps):
            done, step = await advance(steps)
            while not done:
                backend, call = step
                done, step = await advance(steps, await backend.achat(**call))
        return step

    # -- updating -----------------------------------------------------------

    def _plan(self, backend: Any, state: Any, storage: Any = None) -> _Plan:
        storage = storage or self.storage
        stored = storage.inspect(state)
        plan = _Plan(
            reusable=stored.hashes,
            stored_keys=stored.keys,
            invalid=stored.invalid,
            invalid_objects=set(getattr(stored, "invalid_objects", ())),
            stored_attributes=getattr(stored, "attributes", None),
        )
        content_types: dict[type, int] = {}
        for obj in self.iter_objects():
            model = type(obj)
            if model not in content_types:
                content_types[model] = ContentType.objects.get_for_model(obj).pk
            plan.objects += 1
            key = (content_types[model], str(obj.pk))
            chunks = self.chunks_for(obj, backend)
            if chunks:  # An object without text has no rows to hold them.
                plan.attributes[key] = scope.attributes(obj)
            for chunk in chunks:
                plan.rows.append((*key, chunk))
                digest = chunk.content_hash
                if digest not in plan.reusable:
                    plan.pending[digest] = chunk.text
        # Moved to another storage: the vectors are where the index was.
        plan.sources = moving.sources(
            self.name,
            storage,
            state,
            embedding_cache.for_backend(backend),
            moved=state is not None and not stored.keys,
        )
        if plan.sources is not None and plan.pending:
            plan.cached = plan.sources.cached_hashes(plan.pending)
        return plan

    def estimate(self) -> UpdateEstimate:
        """Objects, chunks, and the tokens and cost of what must be embedded."""
        backend = self.embedding_backend
        state = self._reusable_state(backend)
        return self._estimate(backend, self._plan(backend, state))

    def _estimate(self, backend: Any, plan: _Plan) -> UpdateEstimate:
        to_embed = [t for d, t in plan.pending.items() if d not in plan.cached]
        tokens = sum(backend.count_tokens(text) for text in to_embed)
        return UpdateEstimate(
            index_name=self.name,
            objects=plan.objects,
            chunks=len(plan.rows),
            chunks_to_embed=len(to_embed),
            tokens_to_embed=tokens,
            cost=backend.estimate_cost(tokens) if to_embed else 0.0,
            model_id=backend.config.model_id,
            chunks_cached=len(plan.pending) - len(to_embed),
        )

    def _reusable_state(self, backend: Any) -> Any:
        """The current state if its vectors can be reused by ``backend``."""
        state = self.storage.state()
        if state is None or (
            state.model_id == backend.config.model_id
            and state.dimensions == backend.embedding_output_dimensions
        ):
            return state
        return None  # Another model: nothing can be reused; rebuild all.

    @usage.labelled(usage.INDEX_UPDATE)
    def update(
        self,
        *,
        confirm: Callable[[UpdateEstimate], bool] | None = None,
        progress: Callable[[int, int], None] | None = None,
        batch_size: int = 256,
        wait: float | None = 0.0,
        rebuild: bool = False,
    ) -> UpdateReport:
        """Bring the stored vectors up to date with the content.

        Chunks whose text is unchanged keep their vectors (no provider call),
        unless a stored vector is invalid (another length, NaN or infinite
        values): those are embedded again. ``confirm`` sees the estimate
        first and can cancel; ``progress`` gets ``(embedded, to_embed)`` after
        each batch.

        When few objects changed (``in_place_share``), only their chunks are
        written, into the answering build, a batch of whole objects at a
        time: a search sees each object as it was or as it is now, never half
        updated. Otherwise, after a change of embedding model, dimensions or
        chunking (``chunking_signature``), and with ``rebuild=True``, a
        complete new build is written that replaces the old one only when
        complete: an interrupted update leaves the old index answering.

        One update of an index runs at a time, across processes: if another
        holds the index's lease, this one waits up to ``wait`` seconds
        (``None``: as long as it takes) and then raises
        :class:`~wagtail_vector_index.index.lease.IndexUpdateInProgressError`.
        Publish-time updates of objects that arrive meanwhile are queued and
        applied before this returns.
        """
        lease = self._lease()
        lease.acquire(wait=wait)
        return self._with_lease(
            lease,
            lambda: self._update_locked(
                lease,
                confirm=confirm,
                progress=progress,
                batch_size=batch_size,
                full_build=rebuild,
            ),
        )

    def _update_locked(
        self,
        lease: IndexLease,
        *,
        confirm: Callable[[UpdateEstimate], bool] | None = None,
        progress: Callable[[int, int], None] | None = None,
        batch_size: int = 256,
        full_build: bool = False,
    ) -> UpdateReport:
        with lease.kept_alive():
            # Objects queued so far are read by the plan below: their queue
            # entries are done once the build is active. (Their ids, not the
            # highest id: an entry may commit after one with a higher id.)
            covered = list(self._pending().values_list("pk", flat=True))
            backend = self.embedding_backend
            state = self._reusable_state(backend)
            # One instance throughout: its inspect() tells its
            # vectors_by_hash() where the reusable vectors are.
            storage = self.storage
            plan = self._plan(backend, state, storage)
            report = UpdateReport(
                self.name,
                objects=plan.objects,
                chunks=len(plan.rows),
                invalid=plan.invalid,
            )
            report.estimate = self._estimate(backend, plan)
            report.reused = len(plan.rows) - sum(
                1 for _, _, chunk in plan.rows if chunk.content_hash in plan.pending
            )
            if plan.invalid:
                logger.warning(
                    'Vector index "%s": %s stored vectors are invalid (not %s '
                    "dimensions, or NaN or infinite values); embedding them again.",
                    self.name,
                    plan.invalid,
                    state.dimensions,
                )
            # Objects whose chunks (counted: a build holding a chunk twice is
            # not current), vectors or attributes differ, and objects gone.
            changed, removed = plan.changes()
            if (
                state is not None
                and not full_build
                and not plan.pending
                and not plan.invalid
                and not changed
                and not removed
            ):
                report.unchanged = True
                storage.touch(state)
                _maintain(storage, state)
                self._pending().filter(pk__in=covered).delete()
                return report
            if confirm is not None and not confirm(report.estimate):
                report.cancelled = True
                return report
            lease.refresh(force=True)  # Confirming may have taken a while.
            dimensions = backend.embedding_output_dimensions
            signature = self.chunking_signature(backend)
            report.in_place = (
                state is not None
                and not full_build
                and state.chunking in ("", signature)
                and len(changed) + len(removed)
                <= self.in_place_share * max(plan.objects, 1)
            )

            def written(embedded: int, cached: int) -> None:
                if embedded or cached:
                    report.embedded += embedded
                    report.cached += cached
                    if progress is not None:
                        # Vectors from the cache are progress too.
                        done = report.embedded + report.cached
                        progress(done, len(plan.pending))
                lease.refresh()

            report.changed, report.removed = len(changed), len(removed)
            if report.in_place:
                wanted = set(changed)
                rebuild.write_build(
                    storage=storage,
                    state=state,
                    build=None,
                    backend=backend,
                    rows=[row for row in plan.rows if (row[0], row[1]) in wanted],
                    pending=plan.pending,
                    dimensions=dimensions,
                    batch_size=batch_size,
                    on_group=written,
                    cache=plan.sources,
                    attributes=plan.attributes,
                    lease=lease,
                )
                rebuild.remove_objects(storage, state, removed, lease=lease)
                _maintain(storage, state)
                self._pending().filter(pk__in=covered).delete()
                return report
            build = storage.next_build(lease=lease)
            rebuild.write_build(
                storage=storage,
                state=state,
                build=build,
                backend=backend,
                rows=plan.rows,
                pending=plan.pending,
                dimensions=dimensions,
                batch_size=batch_size,
                on_group=written,
                cache=plan.sources,
                attributes=plan.attributes,
            )
            lease.refresh()
            storage.activate(
                build,
                model_id=backend.config.model_id,
                dimensions=dimensions,
                object_count=plan.objects,
                lease=lease,
                chunking=signature,
            )
            self._pending().filter(pk__in=covered).delete()
        return report

    def rebuild_index(self) -> UpdateReport:
        """0.10.0's name for :meth:`update` (deprecated)."""
        warnings.warn(
            "VectorIndex.rebuild_index() is deprecated: call update() instead, or "
            "run manage.py update_vector_indexes.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.update()

    @usage.labelled(usage.INDEX_UPDATE)
    def update_object(self, obj: Any) -> None:
        """Re-index one object (or remove it if it is no longer indexable).

        While an update of the index runs (in any process), the object is
        queued instead, and that update applies it before it ends.
        """
        content_type_id = ContentType.objects.get_for_model(obj).pk
        self._now_or_queued(
            content_type_id, str(obj.pk), lambda lease: self._apply_object(obj, lease)
        )

    def remove_object(self, obj: Any) -> None:
        self.remove_key(ContentType.objects.get_for_model(obj).pk, str(obj.pk))

    def remove_key(self, content_type_id: int, object_id: str) -> None:
        """Drop the chunks of one object (by content type and primary key);
        queued like :meth:`update_object` while an update runs."""
        self._now_or_queued(
            content_type_id,
            object_id,
            lambda lease: self._remove_key(content_type_id, object_id, lease),
        )

    # -- one update at a time ------------------------------------------------

    def _lease(self) -> IndexLease:
        return IndexLease(self.name, seconds=self.update_lease_seconds)

    def _pending(self) -> models.QuerySet:
        return PendingIndexUpdate.objects.filter(index_name=self.name)

    def _with_lease(self, lease: IndexLease, work: Callable[[], Any]) -> Any:
        """Run ``work`` with ``lease`` held, then apply what was queued
        meanwhile and let the lease go."""
        try:
            result = work()
        except BaseException as error:
            # Interrupted (Ctrl-C): let go at once, leave the queue for later.
            self._release(lease, drain=isinstance(error, Exception))
            raise
        self._release(lease)
        return result

    def _now_or_queued(
        self,
        content_type_id: int,
        object_id: str,
        apply: Callable[[IndexLease], None],
    ) -> None:
        lease = self._lease()
        if not lease.try_acquire():
            PendingIndexUpdate.objects.create(
                index_name=self.name,
                content_type_id=content_type_id,
                object_id=object_id,
            )
            # The holder may have let go between our attempt and the queue
            # entry, without seeing it: try again. If the lease is still
            # taken, its holder (or the next) applies the entry before it
            # lets go, since it looks at the queue after letting go.
            if not lease.try_acquire():
                logger.info(
                    'Vector index "%s" is being updated: %s/%s queued.',
                    self.name,
                    content_type_id,
                    object_id,
                )
                return
            self._with_lease(lease, lambda: None)  # Applies the queue.
            return
        self._with_lease(lease, lambda: apply(lease))

    def _release(self, lease: IndexLease, *, drain: bool = True) -> None:
        applied = True
        try:
            if drain:
                applied = self._drain(lease)
        finally:
            lease.release()
        # Entries queued after the queue was read but before the lease was
        # free were written by processes that found the lease taken.
        while drain and applied and self._pending().exists():
            if not lease.try_acquire():
                return  # The new holder applies them.
            try:
                applied = self._drain(lease)
            finally:
                lease.release()

    def _drain(self, lease: IndexLease) -> bool:
        """Apply the queued objects; ``False`` if one failed (it stays queued
        for the next holder of the lease)."""
        try:
            while lease.held:
                batch = list(
                    self._pending()
                    .order_by("pk")
                    .values_list("pk", "content_type_id", "object_id")[:100]
                )
                if not batch:
                    return True
                entries: dict[tuple[int, str], list[int]] = defaultdict(list)
                for pk, content_type_id, object_id in batch:
                    entries[(content_type_id, object_id)].append(pk)
                for (content_type_id, object_id), pks in entries.items():
                    lease.refresh()
                    self._apply_key(content_type_id, object_id, lease)
                    self._pending().filter(pk__in=pks).delete()
        except Exception as error:
            if lease.held:
                logger.warning(
                    'Vector index "%s": a queued update could not be applied and '
                    "stays queued: %s",
                    self.name,
                    error,
                    exc_info=not isinstance(error, WagtailVectorIndexError),
                )
        return False

    def _apply_key(
        self, content_type_id: int, object_id: str, lease: IndexLease
    ) -> None:
        model = ContentType.objects.get_for_id(content_type_id).model_class()
        obj = model._default_manager.filter(pk=object_id).first() if model else None
        if obj is None:
            self._remove_key(content_type_id, object_id, lease)
        else:
            self._apply_object(obj, lease)

    def _apply_object(self, obj: Any, lease: IndexLease) -> None:
        if not self.is_indexable(obj):
            self._remove_key(
                ContentType.objects.get_for_model(obj).pk, str(obj.pk), lease
            )
            return
        backend = self.embedding_backend
        state = self._check_state(backend)
        if state is None:
            self._update_locked(lease)  # First use: build the whole index.
            return
        content_type_id = ContentType.objects.get_for_model(obj).pk
        chunks = self.chunks_for(obj, backend)
        known = self.storage.vectors_by_hash(state, [c.content_hash for c in chunks])
        missing = [c for c in chunks if c.content_hash not in known]
        if missing:
            vectors = backend.with_cache().embed_matrix([c.text for c in missing])
            for chunk, vector in zip(missing, vectors, strict=True):
                known[chunk.content_hash] = to_bytes(vector)
        path, locale_id = scope.attributes(obj)
        rows = [
            ChunkRow(
                content_type_id,
                str(obj.pk),
                c.position,
                c.text,
                c.content_hash,
                known[c.content_hash],
                path=path,
                locale_id=locale_id,
            )
            for c in chunks
        ]
        self.storage.replace_object(
            state,
            content_type_id,
            str(obj.pk),
            rows,
            dimensions=backend.embedding_output_dimensions,
            lease=lease,
        )

    def _remove_key(
        self, content_type_id: int, object_id: str, lease: IndexLease
    ) -> None:
        state = self.storage.state()
        if state is not None:
            self.storage.replace_object(
                state, content_type_id, object_id, [], lease=lease
            )


def _advance(steps: Generator[Any, Any, Any], reply: Any = None) -> tuple[bool, Any]:
    """``(False, what steps yields next)`` once sent ``reply``, or ``(True,
    what it returned)`` (``StopIteration`` cannot cross ``sync_to_async``)."""
    try:
        return False, steps.send(reply)
    except StopIteration as done:
        return True, done.value


def _condense_kwargs(chat_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's chat keyword arguments for the rewriting call (the
    answer's length limits aside: the question is short)."""
    return {
        key: value
        for key, value in chat_kwargs.items()
        if key not in ("max_tokens", "max_completion_tokens", "n")
    }


class ModelVectorIndex(VectorIndex):
    """The index of one model (see ``VectorIndexedMixin``)."""

    def __init__(self, model: type, **options: Any) -> None:
        self.model = model
        for key, value in options.items():
            setattr(self, key, value)
        super().__init__(model._meta.label_lower)

    def get_querysets(self) -> list:
        return [self.model._default_manager.all()]
