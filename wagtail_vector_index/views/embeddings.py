"""The embeddings test page: embed texts, compare them, rank them by a query.

Similarities are cosines computed in plain Python: at most 51 vectors (50
texts and the query) are compared, which takes milliseconds. The page's
second tab searches a vector index (:mod:`.index_search`).
"""

from __future__ import annotations

import math
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from wagtail_vector_index import ai, conf, usage
from wagtail_vector_index.ai_utils.backends.base import BaseEmbeddingBackend
from wagtail_vector_index.exceptions import (
    AIBudgetExceededError,
    AIProviderError,
    InvalidAIBackendError,
)
from wagtail_vector_index.index import registry
from wagtail_vector_index.redaction import get_logger
from wagtail_vector_index.views import ratelimit
from wagtail_vector_index.views.base import (
    AIPageView,
    site_from_query,
    warn_about_budgets,
)
from wagtail_vector_index.views.chat import UNEXPECTED_ERROR
from wagtail_vector_index.views.forms import (
    MAX_TEXTS,
    EmbeddingsTestForm,
    IndexSearchForm,
    backend_choices,
    default_alias,
    index_choices,
)

# Redacted: a traceback's chained LiteLLM errors may quote a key.
logger = get_logger(__name__)

#: How to index content, linked from the page when no index is registered.
INDEX_DOCS_URL = (
    "https://github.com/wagtail-vector-index/wagtail-vector-index/blob/main/"
    "docs/vector-indexes.md"
)

#: Shades of the similarity grid (CSS classes ``wvi-similarity--0`` to ``--10``).
LEVELS = 10


def norm(vector: Sequence[float]) -> float:
    return math.sqrt(math.fsum(value * value for value in vector))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity; 0 when either vector is zero."""
    length = norm(a) * norm(b)
    if not length:
        return 0.0
    return math.fsum(map(operator.mul, a, b)) / length


def cosine_matrix(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """All pairwise cosines, each vector normalised once."""
    units = []
    for vector in vectors:
        length = norm(vector)
        units.append([v / length for v in vector] if length else list(vector))
    size = len(units)
    matrix = [[0.0] * size for _ in range(size)]
    for i in range(size):
        matrix[i][i] = 1.0 if any(units[i]) else 0.0
        for j in range(i + 1, size):
            value = math.fsum(map(operator.mul, units[i], units[j]))
            # Rounding can push a cosine a hair past 1.
            value = max(-1.0, min(1.0, value))
            matrix[i][j] = matrix[j][i] = value
    return matrix


def duration(seconds: float) -> str:
    """``12.3 ms`` or ``1.25 s``."""
    if seconds < 1:
        # Translators: a duration in milliseconds, e.g. "12.3 ms".
        return gettext("%(milliseconds).1f ms") % {"milliseconds": seconds * 1000}
    # Translators: a duration in seconds, e.g. "1.25 s".
    return gettext("%(seconds).2f s") % {"seconds": seconds}


def level(value: float) -> int:
    """The shade of a similarity: 0 (unrelated or opposite) to 10 (the same)."""
    return round(max(0.0, min(1.0, value)) * LEVELS)


@dataclass
class Cell:
    value: float
    level: int
    row: int
    column: int


@dataclass
class Ranked:
    position: int
    number: int
    text: str
    score: float


@dataclass
class EmbeddingsResult:
    """What the page shows after a successful call."""

    backend: Any
    texts: list[str]
    query: str
    dimensions: int
    seconds: float
    tokens: int | None
    cost: float | None
    matrix: list[list[Cell]] = field(default_factory=list)
    ranking: list[Ranked] = field(default_factory=list)

    @property
    def time_display(self) -> str:
        return duration(self.seconds)

    @property
    def input_count(self) -> int:
        """Texts sent to the backend (the query included)."""
        return len(self.texts) + (1 if self.query else 0)

    @property
    def rows(self) -> list[tuple[int, str, list[Cell]]]:
        return [
            (number, text, cells)
            for number, (text, cells) in enumerate(
                zip(self.texts, self.matrix, strict=True), start=1
            )
        ]


def estimate_tokens(backend: Any, texts: list[str]) -> int | None:
    """Tokens by the backend's tokenizer; ``None`` when it has none (the
    base class only gives an upper bound, the byte count)."""
    if type(backend).count_tokens is BaseEmbeddingBackend.count_tokens:
        return None
    try:
        return sum(backend.count_tokens(text) for text in texts)
    except Exception:  # A tokenizer that cannot load must not fail the page.
        return None


def run(backend: Any, texts: list[str], query: str) -> EmbeddingsResult:
    """Embed ``texts`` (and ``query``) and compare them. Provider errors
    propagate (as :class:`AIProviderError`)."""
    inputs = [*texts, query] if query else list(texts)
    started = time.perf_counter()
    vectors = list(backend.embed(inputs))
    seconds = time.perf_counter() - started
    tokens = estimate_tokens(backend, inputs)
    cost = backend.estimate_cost(tokens) if tokens is not None else None
    if backend.offline:
        cost = 0.0
    text_vectors = vectors[: len(texts)]
    matrix = cosine_matrix(text_vectors)
    result = EmbeddingsResult(
        backend=backend,
        texts=list(texts),
        query=query,
        dimensions=len(vectors[0]) if vectors else 0,
        seconds=seconds,
        tokens=tokens,
        cost=cost,
        matrix=[
            [Cell(value, level(value), i + 1, j + 1) for j, value in enumerate(row)]
            for i, row in enumerate(matrix)
        ],
    )
    if query:
        scores = [cosine(vector, vectors[-1]) for vector in text_vectors]
        order = sorted(range(len(texts)), key=lambda i: (-scores[i], i))
        result.ranking = [
            Ranked(position, i + 1, texts[i], scores[i])
            for position, i in enumerate(order, start=1)
        ]
    return result


class EmbeddingsTestView(AIPageView):
    """GET shows the forms; POST embeds the texts and shows the comparison.

    The page has two tabs: "Compare texts" (this view's form) and "Search an
    index", whose form posts to :class:`.index_search.IndexSearchView`.
    """

    template_name = "wagtail_vector_index/admin/embeddings.html"
    page_title = _("Embeddings test")
    header_icon = "grid"
    #: The tab shown first (``texts`` or ``index-search``).
    active_tab = "texts"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = self.texts_form()
        warn_about_budgets(request, form.initial.get("site"))
        return self.render_to_response(self.get_context_data(form=form))

    def texts_form(self) -> EmbeddingsTestForm:
        """The unbound texts form: the site and alias of the query string."""
        request = self.request
        choices = backend_choices(conf.EMBEDDING)
        alias = request.GET.get("alias")
        if alias not in dict(choices):
            alias = default_alias(choices)
        return EmbeddingsTestForm(
            choices=choices,
            initial={
                "site": site_from_query(request, request.GET.get("site")),
                "alias": alias,
            },
        )

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = EmbeddingsTestForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        try:
            backend = ai.get_embedding_backend(
                form.cleaned_data["alias"], site=form.cleaned_data["site"]
            ).with_usage(
                feature=usage.EMBEDDINGS_TEST_PAGE,
                user=request.user,
                user_budget=True,
            )
        except InvalidAIBackendError as error:
            return self.render_to_response(
                self.get_context_data(form=form, error=str(error))
            )
        if not ratelimit.take(request.user):
            return self.render_to_response(
                self.get_context_data(form=form, error=ratelimit.message()),
                status=429,
            )
        try:
            result = run(
                backend, form.cleaned_data["texts"], form.cleaned_data["query"]
            )
        except (
            AIProviderError,
            InvalidAIBackendError,
            AIBudgetExceededError,
        ) as error:
            return self.render_to_response(
                self.get_context_data(form=form, error=str(error), backend=backend)
            )
        except Exception:
            logger.exception("Embeddings test page: the call to %r failed", backend)
            return self.render_to_response(
                self.get_context_data(
                    form=form, error=UNEXPECTED_ERROR, backend=backend
                )
            )
        return self.render_to_response(
            self.get_context_data(form=form, result=result, backend=backend)
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        indexes = registry.get_indexes()
        if "search_form" not in context:
            context["search_form"] = IndexSearchForm(choices=index_choices(indexes))
        context.update(
            has_backends=bool(ai.configured_aliases(conf.EMBEDDING)),
            has_indexes=bool(indexes),
            active_tab=self.active_tab,
            max_texts=MAX_TEXTS,
            rate_limit=conf.get_test_pages_rate_limit(),
            search_url=reverse("wagtail_vector_index:embeddings_index_search"),
            indexes_url=reverse("wagtail_vector_index:indexes"),
            index_docs_url=INDEX_DOCS_URL,
        )
        return context
