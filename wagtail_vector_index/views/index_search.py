"""The "Search an index" tab of the embeddings test page.

``IndexSearchView`` (POST only) runs a query against one registered vector
index with the index's own ``search_results()``, so only what the index holds
(live pages) and the editor may view is ever listed. Problems an
editor can fix (an index never built, built with another model, empty) are
found before the provider is called and explained on the page; provider
failures are shown with the project's messages, as on the rest of the page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from wagtail.admin.admin_url_finder import AdminURLFinder
from wagtail.models import Page

from wagtail_vector_index import usage
from wagtail_vector_index.exceptions import WagtailVectorIndexError
from wagtail_vector_index.index import registry
from wagtail_vector_index.index.scope import ALL_LOCALES
from wagtail_vector_index.redaction import get_logger
from wagtail_vector_index.views import ratelimit
from wagtail_vector_index.views.chat import UNEXPECTED_ERROR
from wagtail_vector_index.views.embeddings import EmbeddingsTestView, duration
from wagtail_vector_index.views.forms import IndexSearchForm, index_choices

# Redacted: a traceback's chained LiteLLM errors may quote a key.
logger = get_logger(__name__)

#: Shown when the index cannot be read (its storage fails, say).
UNREADABLE_INDEX = _(
    "The vector index could not be read. The details are in the server's logs."
)


@dataclass
class IndexHit:
    """One object found, as the results table shows it."""

    position: int
    title: str
    kind: str
    score: float
    text: str
    edit_url: str | None = None
    live_url: str | None = None


@dataclass
class IndexSearchResult:
    """What the page shows after a search."""

    index_name: str
    query: str
    backend: Any
    model_id: str
    dimensions: int
    objects: int
    chunks: int
    seconds: float
    threshold: float
    hits: list[IndexHit]

    @property
    def time_display(self) -> str:
        return duration(self.seconds)


def describe(
    position: int, result: Any, url_finder: AdminURLFinder, request: HttpRequest
) -> IndexHit:
    """A search result for the table: the object's edit URL only when the
    user may edit it, the live URL of pages that have one."""
    obj = result.object
    hit = IndexHit(
        position=position,
        title=str(obj),
        kind=str(capfirst(obj._meta.verbose_name)),
        score=result.score,
        text=result.text,
    )
    try:
        hit.edit_url = url_finder.get_edit_url(obj)
    except Exception:  # A model whose admin URL cannot be built: no link.
        logger.exception("Index search: no edit URL for %r", obj)
    if isinstance(obj, Page):
        hit.live_url = obj.get_url(request=request)
    return hit


class IndexSearchView(EmbeddingsTestView):
    """POST only: search the chosen index and show the page on that tab."""

    http_method_names = ["post"]
    active_tab = "index-search"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        indexes = registry.get_indexes()
        form = IndexSearchForm(request.POST, choices=index_choices(indexes))
        if not form.is_valid():
            return self.show(form)
        name = form.cleaned_data["index"]
        index = indexes[name]
        try:
            state = index.check_state()
        except WagtailVectorIndexError as error:
            # IndexNeedsRebuildError or a backend that cannot be built: their
            # messages say what to do.
            return self.show(form, search_error=str(error))
        except Exception:
            logger.exception("Index search: could not read the state of %r", index)
            return self.show(form, search_error=UNREADABLE_INDEX)
        if state is None:
            return self.show(form, search_notice="not_built", index_name=name)
        if not state.chunk_count:
            return self.show(form, search_notice="empty", index_name=name)
        # Counted only now: a refused form or an unusable index calls no one.
        if not ratelimit.take(request.user):
            return self.show(form, status=429, search_error=ratelimit.message())

        backend = index.embedding_backend
        started = time.perf_counter()
        try:
            # The editor's search, like the other test pages' calls: recorded
            # under the editor and within their daily budget. (The index's
            # ``user=`` only decides what the editor may see; the request is
            # not passed, as it would narrow the search to its site.)
            with usage.usage_context(user=request.user, user_budget=True):
                results = index.search_results(
                    form.cleaned_data["query"],
                    limit=form.cleaned_data["limit"],
                    similarity_threshold=form.cleaned_data["similarity_threshold"],
                    # What the editor may view (restricted pages the index
                    # holds included), in every site and locale.
                    user=request.user,
                    locale=ALL_LOCALES,
                )
        except WagtailVectorIndexError as error:
            # Provider failures (AIProviderError), an index rebuilt with
            # another model meanwhile: messages written for editors.
            return self.show(form, search_error=str(error))
        except Exception:
            logger.exception("Index search: searching %r failed", index)
            return self.show(form, search_error=UNEXPECTED_ERROR)
        seconds = time.perf_counter() - started

        url_finder = AdminURLFinder(request.user)
        result = IndexSearchResult(
            index_name=name,
            query=form.cleaned_data["query"],
            backend=backend,
            model_id=state.model_id,
            dimensions=state.dimensions,
            objects=state.object_count,
            chunks=state.chunk_count,
            seconds=seconds,
            threshold=form.cleaned_data["similarity_threshold"],
            hits=[
                describe(position, found, url_finder, request)
                for position, found in enumerate(results, start=1)
            ],
        )
        return self.show(form, search_result=result)

    def show(
        self, form: IndexSearchForm, status: int = 200, **context: Any
    ) -> HttpResponse:
        """The embeddings page on the search tab; the texts tab unbound."""
        return self.render_to_response(
            self.get_context_data(form=self.texts_form(), search_form=form, **context),
            status=status,
        )
