"""Demo views: generating a summary (admin) and asking the site (visitors)."""

import logging
import re

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.generic import TemplateView
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin

from home.models import ArticlePage
from wagtail_vector_index.exceptions import WagtailVectorIndexError

logger = logging.getLogger(__name__)


class GenerateSummaryView(WagtailAdminTemplateMixin, TemplateView):
    """GET asks for confirmation; POST generates the summary and saves it as a
    new draft revision for the editor to review and publish."""

    template_name = "home/admin/generate_summary.html"
    page_title = "Generate summary"
    header_icon = "wand"

    def dispatch(self, request, page_id):
        self.page = get_object_or_404(ArticlePage, pk=page_id)
        if not self.page.permissions_for_user(request.user).can_edit():
            raise PermissionDenied
        return super().dispatch(request, page_id)

    def get_page_subtitle(self):
        return self.page.get_admin_display_title()

    def get_context_data(self, **kwargs):
        return super().get_context_data(page=self.page, **kwargs)

    def post(self, request, page_id):
        page = self.page.get_latest_revision_as_object()
        try:
            page.summary = page.generate_summary()
        except WagtailVectorIndexError as error:
            messages.error(request, f"No summary was generated: {error}")
            return redirect("demo_generate_summary", page_id=page_id)
        page.save_revision(user=request.user, log_action=True)
        messages.success(
            request,
            "Summary generated and saved as a draft: review it, then publish.",
        )
        return redirect(reverse("wagtailadmin_pages:edit", args=[page_id]))


#: Turns of the conversation kept in the visitor's session (three exchanges).
MAX_TURNS = 6
_CITATION = re.compile(r"\[(\d{1,3})\]")


def ask(request):
    """Answer a visitor's questions from the articles, as a short
    conversation, with the sources cited as links.

    A visitor never sees why the AI failed (the provider's words are for the
    site's developers): the page says no answer could be given, and the
    reason goes to the log.
    """
    if request.GET.get("new"):
        request.session.pop("ask_history", None)
        return redirect("ask")
    history = request.session.get("ask_history", [])
    question = request.GET.get("q", "").strip()[:300]
    context = {"question": question, "earlier": history}
    if question:
        try:
            result = ArticlePage.vector_index.query(
                question, sources_limit=3, request=request, history=history
            )
        except WagtailVectorIndexError as error:
            logger.warning("Ask page: no answer to a visitor's question: %s", error)
            context["failed"] = True
        else:
            context["answer"] = result.answer
            context["answer_parts"] = cited_parts(result.answer, result.sources)
            context["sources"] = result.sources
            context["cited"] = result.citations
            turns = [
                {"role": "user", "content": question},
                {"role": "assistant", "content": result.answer},
            ]
            request.session["ask_history"] = (history + turns)[-MAX_TURNS:]
    return render(request, "home/ask.html", context)


def cited_parts(answer, sources):
    """The answer as text and citations (``[2]`` naming ``sources[1]``), for
    the template to show as escaped text and links."""
    parts = []
    position = 0
    for match in _CITATION.finditer(answer):
        number = int(match.group(1))
        if not 1 <= number <= len(sources):
            continue
        parts.append({"text": answer[position : match.start()]})
        parts.append({"number": number, "source": sources[number - 1]})
        position = match.end()
    parts.append({"text": answer[position:]})
    return parts
