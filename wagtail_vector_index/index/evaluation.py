"""Measuring retrieval: labelled questions, recall@k, MRR and nDCG@k.

A questions file holds one JSON object per line::

    {"question": "How do I keep a cyclist dry?", "expected": ["cycling-in-rain"]}

``expected`` lists the pages (or objects) that answer it: primary keys
(numbers), slugs, or URLs (``/garden/roses/`` or ``https://site/garden/roses/``).
Blank lines and lines starting with ``#`` are skipped.

For each question and each mode, the index's ``search()`` returns its top
``k`` objects; with the expected ones as the relevant set:

- **recall@k**: the share of the expected objects among the top ``k``;
- **MRR**: the mean of ``1 / rank`` of the first expected object in the top
  ``k`` (0 when none is there);
- **nDCG@k**: ``sum(1 / log2(rank + 1))`` over the expected objects in the
  top ``k``, divided by the same sum for a perfect ranking (all expected
  objects first).

Each figure is the mean over the questions; latency is the median time of
one search.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.contrib.contenttypes.models import ContentType

Key = tuple[int, str]


class QuestionsFileError(ValueError):
    """The questions file cannot be used (the message says where and why)."""


@dataclass
class Question:
    text: str
    #: What the file says answers it (ids, slugs or URLs), as written.
    expected: list[Any]
    #: The keys of the objects those name.
    relevant: set[Key] = field(default_factory=set)
    line: int = 0


@dataclass
class ModeFigures:
    mode: str
    recall: float
    mrr: float
    ndcg: float
    latency_ms: float
    questions: int


def recall_at_k(ranked: Sequence[Key], relevant: set[Key], k: int) -> float:
    if not relevant:
        return 0.0
    return len(set(ranked[:k]) & relevant) / len(relevant)


def reciprocal_rank(ranked: Sequence[Key], relevant: set[Key], k: int) -> float:
    for rank, key in enumerate(ranked[:k], start=1):
        if key in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(ranked: Sequence[Key], relevant: set[Key], k: int) -> float:
    gained = sum(
        1.0 / math.log2(rank + 1)
        for rank, key in enumerate(ranked[:k], start=1)
        if key in relevant
    )
    ideal = sum(
        1.0 / math.log2(rank + 1) for rank in range(1, min(len(relevant), k) + 1)
    )
    return gained / ideal if ideal else 0.0


def read_questions(path: str | Path) -> list[Question]:
    """The questions of a JSON-lines file, or :class:`QuestionsFileError`."""
    questions = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise QuestionsFileError(f"{path}: {error.strerror or error}") from error
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise QuestionsFileError(
                f"{path}, line {number}: not JSON ({error.msg})."
            ) from None
        if not isinstance(item, dict):
            raise QuestionsFileError(f"{path}, line {number}: not a JSON object.")
        text = item.get("question")
        expected = item.get("expected")
        if not isinstance(text, str) or not text.strip():
            raise QuestionsFileError(f'{path}, line {number}: no "question" text.')
        if isinstance(expected, (str, int)):
            expected = [expected]
        if not isinstance(expected, list) or not expected:
            raise QuestionsFileError(
                f'{path}, line {number}: "expected" must list the ids, slugs or '
                "URLs of the pages that answer the question."
            )
        questions.append(Question(text.strip(), expected, line=number))
    if not questions:
        raise QuestionsFileError(f"{path}: no questions.")
    return questions


def resolve(index: Any, questions: Iterable[Question], path: str | Path) -> None:
    """Fill in each question's ``relevant`` keys from what it names, among
    the index's objects; :class:`QuestionsFileError` for a name that matches
    none."""
    for question in questions:
        for reference in question.expected:
            keys = _keys_for(index, reference)
            if not keys:
                raise QuestionsFileError(
                    f"{path}, line {question.line}: {reference!r} names no object "
                    f"of the vector index {index.name!r}."
                )
            question.relevant |= keys


def _keys_for(index: Any, reference: Any) -> set[Key]:
    from wagtail.models import Page, Site

    keys: set[Key] = set()
    for queryset in index.get_querysets():
        model = queryset.model
        is_page = issubclass(model, Page)
        if isinstance(reference, int) and not isinstance(reference, bool):
            found = queryset.filter(pk=reference)
        elif (
            isinstance(reference, str)
            and is_page
            and (reference.startswith("/") or "://" in reference)
        ):
            path = urlsplit(reference).path or "/"
            url_paths = [
                site.root_page.url_path + path.lstrip("/")
                for site in Site.objects.select_related("root_page")
            ]
            found = queryset.filter(url_path__in=url_paths)
        elif isinstance(reference, str) and is_page:
            found = queryset.filter(slug=reference)
        elif isinstance(reference, str) and reference.isdigit():
            found = queryset.filter(pk=reference)
        else:
            continue
        for obj in found:
            content_type = getattr(obj, "content_type_id", None) if is_page else None
            if content_type is None:
                content_type = ContentType.objects.get_for_model(obj).pk
            keys.add((content_type, str(obj.pk)))
    return keys


def evaluate(
    index: Any,
    questions: Sequence[Question],
    modes: Sequence[str],
    k: int,
    search_kwargs: dict[str, Any] | None = None,
) -> list[ModeFigures]:
    """The figures of each mode over ``questions`` (already resolved)."""
    figures = []
    for mode in modes:
        recalls, ranks, gains, times = [], [], [], []
        for question in questions:
            started = time.perf_counter()
            results = index.search_results(
                question.text,
                limit=k,
                similarity_threshold=-1.0,
                mode=mode,
                **(search_kwargs or {}),
            )
            times.append(time.perf_counter() - started)
            ranked = [result.key for result in results]
            recalls.append(recall_at_k(ranked, question.relevant, k))
            ranks.append(reciprocal_rank(ranked, question.relevant, k))
            gains.append(ndcg_at_k(ranked, question.relevant, k))
        figures.append(
            ModeFigures(
                mode=mode,
                recall=statistics.fmean(recalls),
                mrr=statistics.fmean(ranks),
                ndcg=statistics.fmean(gains),
                latency_ms=1000 * statistics.median(times),
                questions=len(questions),
            )
        )
    return figures
