"""Keyword ranking with the site's Wagtail search backend, and its fusion with
the vector ranking (reciprocal rank fusion).

"keyword" asks the search backend the site already runs (whatever
``WAGTAILSEARCH_BACKENDS`` says: the database's full-text search,
Elasticsearch, OpenSearch) for the index's objects, cut down to the search's
scope. "hybrid" fuses that ranking with the vector ranking: each object
scores ``sum(weight / (k + rank))`` over the rankings it appears in (rank 1
first), so an object near the top of either list rises, and one in both
rises most. Only ranks count, never the two kinds of scores, which are not
comparable.

Models without Wagtail ``search_fields`` cannot be searched by keyword:
their objects are ranked by vector alone, with a warning in the log (and in
``manage.py check``, W012), never silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.contenttypes.models import ContentType

from wagtail_vector_index.index import scope

logger = logging.getLogger(__name__)

VECTOR = "vector"
KEYWORD = "keyword"
HYBRID = "hybrid"
MODES = (VECTOR, KEYWORD, HYBRID)

Key = tuple[int, str]


def check_mode(mode: Any) -> str:
    if mode not in MODES:
        raise ValueError(
            f"mode must be one of {', '.join(repr(m) for m in MODES)}, not {mode!r}."
        )
    return mode


def keyword_searchable(model: type) -> bool:
    """Whether Wagtail's search backend can search ``model`` (it declares
    ``search_fields``)."""
    from wagtail.search.index import Indexed

    return issubclass(model, Indexed) and bool(getattr(model, "search_fields", None))


_warned: set[str] = set()


def warn_once(key: str, message: str) -> None:
    """Log ``message % key.split()[0]`` the first time ``key`` comes up."""
    if key not in _warned:
        _warned.add(key)
        logger.warning(message, key.split()[0])


def keyword_ranking(
    index: Any, query: str, within: scope.Scope, depth: int
) -> list[Key]:
    """The keys of the ``depth`` objects the search backend ranks best for
    ``query`` within the scope, best first (the index's querysets taken in
    turn, rank by rank)."""
    from wagtail.search.backends import get_search_backend

    backend = get_search_backend()
    rankings: list[list[Key]] = []
    for queryset in index.get_querysets():
        model = queryset.model
        if not keyword_searchable(model):
            warn_once(
                f"{index.name} {model._meta.label}",
                f"Vector index %r: {model._meta.label} has no search_fields, so "
                "keyword and hybrid searches rank its objects by vector alone.",
            )
            continue
        restricted = scope.restrict(index, queryset, within)
        results = backend.search(query, restricted, operator="or")[:depth]
        rankings.append(_keys(results))
    return _interleave(rankings)[:depth]


def _keys(objects: Iterable[Any]) -> list[Key]:
    keys = []
    for obj in objects:
        content_type = getattr(obj, "content_type_id", None)
        if content_type is None or not hasattr(obj, "path"):
            content_type = ContentType.objects.get_for_model(obj).pk
        keys.append((content_type, str(obj.pk)))
    return keys


def _interleave(rankings: list[list[Key]]) -> list[Key]:
    merged: list[Key] = []
    seen: set[Key] = set()
    for position in range(max((len(r) for r in rankings), default=0)):
        for ranking in rankings:
            if position < len(ranking) and ranking[position] not in seen:
                seen.add(ranking[position])
                merged.append(ranking[position])
    return merged


def fuse(
    rankings: Sequence[Sequence[Key]], weights: Sequence[float], k: float
) -> list[tuple[Key, float]]:
    """Reciprocal rank fusion: every key with ``sum(weight / (k + rank))``,
    best first (ties: in the order first seen, the first ranking first)."""
    scores: dict[Key, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, key in enumerate(ranking, start=1):
            scores[key] = scores.get(key, 0.0) + weight / (k + rank)
    order = {key: position for position, key in enumerate(scores)}
    return sorted(scores.items(), key=lambda item: (-item[1], order[item[0]]))
