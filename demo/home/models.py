"""The demo's pages: a home page listing articles, and the articles."""

import logging

from django.db import models
from modelcluster.fields import ParentalKey
from wagtail.admin.panels import FieldPanel, MultiFieldPanel
from wagtail.fields import RichTextField
from wagtail.models import Orderable, Page
from wagtail.search import index

from wagtail_vector_index.exceptions import WagtailVectorIndexError
from wagtail_vector_index.index import EmbeddingField, VectorIndexedMixin
from wagtail_vector_index.pages import AIBackendsMixin
from wagtail_vector_index.panels import (
    AIFieldPanel,
    AITitleFieldPanel,
    AlreadyPublishedPanel,
    RelatedPagesPanel,
)

logger = logging.getLogger(__name__)

SUMMARY_PROMPT = (
    "Summarise the article the user sends in two plain sentences, for a list of "
    "articles. Answer with the summary only."
)


class HomePage(Page):
    """The root of the demo site: an introduction and the list of articles."""

    intro = models.TextField(blank=True)

    content_panels = [*Page.content_panels, FieldPanel("intro")]

    parent_page_types = ["wagtailcore.Page"]
    subpage_types = ["home.ArticlePage"]

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["articles"] = ArticlePage.objects.child_of(self).live()
        return context


class ArticlePage(VectorIndexedMixin, AIBackendsMixin, Page):
    """An article: a one-line introduction, a rich text body, a summary an
    editor can have generated (More › Generate summary), and related articles
    the editor chooses, with suggestions from the vector index ("Suggest
    related pages"); "Already published?" shows the published articles
    closest to the draft."""

    intro = models.CharField(max_length=255, blank=True)
    body = RichTextField(blank=True)
    summary = models.TextField(
        blank=True,
        help_text="Shown in the list of articles. Generate it from the body with "
        "More › Generate summary (this site's AI parameters apply), then edit "
        "freely.",
    )

    # "Suggest" beside the title and the search description: alternatives
    # from the page's unsaved content (offline: from its first sentences).
    content_panels = [
        AITitleFieldPanel("title", prompt="title"),
        FieldPanel("intro"),
        FieldPanel("body"),
        FieldPanel("summary"),
        RelatedPagesPanel("related_pages", heading="Related articles", limit=5),
        AlreadyPublishedPanel(),
    ]
    promote_panels = [
        MultiFieldPanel(
            [
                FieldPanel("slug"),
                FieldPanel("seo_title"),
                AIFieldPanel("search_description", prompt="search_description"),
            ],
            heading="For search engines",
        ),
        MultiFieldPanel([FieldPanel("show_in_menus")], heading="For site menus"),
    ]
    search_fields = [
        *Page.search_fields,
        index.SearchField("intro"),
        index.SearchField("body"),
    ]
    embedding_fields = [
        EmbeddingField("title", important=True),
        EmbeddingField("intro"),
        EmbeddingField("body"),
    ]

    parent_page_types = ["home.HomePage"]
    subpage_types = []

    def generate_summary(self) -> str:
        """Ask the chat backend, with this page's site's parameters, for a
        summary. Called by an editor's action, never on a page view."""
        text = EmbeddingField("body").get_text(self)
        response = self.get_chat_backend().chat(
            messages=[
                {"role": "system", "content": SUMMARY_PROMPT},
                {"role": "user", "content": f"{self.title}\n\n{text}"},
            ]
        )
        return response.text.strip()

    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["related"] = [
            link.page
            for link in self.related_pages.select_related("page")
            if link.page.live
        ]
        try:
            # Stored vectors only: a page view never calls the provider.
            context["similar"] = ArticlePage.vector_index.find_similar(
                self, limit=3, embed_missing=False
            )
        except WagtailVectorIndexError as error:
            # Not indexed yet, needs a rebuild, or the storage refused: the
            # page shows without the list, and the reason goes to the log.
            logger.warning("Similar articles of %s left out: %s", self.pk, error)
            context["similar"] = []
        return context


class ArticleRelatedPage(Orderable):
    """An article the editor links from another (Related articles)."""

    source = ParentalKey(
        ArticlePage, on_delete=models.CASCADE, related_name="related_pages"
    )
    page = models.ForeignKey(
        "wagtailcore.Page", on_delete=models.CASCADE, related_name="+"
    )

    panels = [FieldPanel("page")]
