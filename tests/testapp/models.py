from django.db import models
from modelcluster.fields import ParentalKey
from wagtail.admin.panels import FieldPanel, MultiFieldPanel
from wagtail.fields import RichTextField
from wagtail.models import Orderable, Page
from wagtail.search import index

from wagtail_vector_index.index import (
    AIBackendsMixin,
    EmbeddingField,
    VectorIndexedMixin,
)
from wagtail_vector_index.panels import (
    AIFieldPanel,
    AITitleFieldPanel,
    AlreadyPublishedPanel,
    RelatedPagesPanel,
)


class ArticlePage(VectorIndexedMixin, AIBackendsMixin, Page):
    intro = models.CharField(max_length=255, blank=True)
    body = RichTextField(blank=True)
    summary = models.TextField(blank=True)

    # Field suggestions (tests/test_editor_fields.py): a built-in prompt on
    # the title and the search description, a site's own on the summary.
    content_panels = [
        AITitleFieldPanel("title"),
        FieldPanel("intro"),
        FieldPanel("body"),
        AIFieldPanel("summary", prompt="teaser", alternatives=2),
        RelatedPagesPanel("related_pages", heading="Related pages"),
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
    ]

    embedding_fields = [
        EmbeddingField("title", important=True),
        EmbeddingField("intro"),
        EmbeddingField("body"),
    ]
    # What keyword and hybrid searches find with the Wagtail search backend.
    search_fields = [
        *Page.search_fields,
        index.SearchField("intro"),
        index.SearchField("body"),
    ]


class ArticleRelatedPage(Orderable):
    """A link from an article to a related page (the related pages panel)."""

    source = ParentalKey(
        ArticlePage, on_delete=models.CASCADE, related_name="related_pages"
    )
    page = models.ForeignKey(
        "wagtailcore.Page", on_delete=models.CASCADE, related_name="+"
    )

    panels = [FieldPanel("page")]


class Book(VectorIndexedMixin, models.Model):
    title = models.CharField(max_length=255)
    blurb = models.TextField()

    embedding_fields = [
        EmbeddingField("title", important=True),
        EmbeddingField("blurb"),
    ]
    vector_index_options = {"max_chunk_tokens": 24, "chunk_overlap": 4}
    # Field suggestions on a model that is not a page (as a snippet's panels).
    panels = [AIFieldPanel("title", prompt="title"), FieldPanel("blurb")]

    def __str__(self) -> str:
        return self.title
