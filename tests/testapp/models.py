from django.db import models
from modelcluster.fields import ParentalKey
from wagtail.admin.panels import FieldPanel
from wagtail.fields import RichTextField
from wagtail.models import Orderable, Page
from wagtail.search import index

from wagtail_vector_index.index import (
    AIBackendsMixin,
    EmbeddingField,
    VectorIndexedMixin,
)
from wagtail_vector_index.panels import AlreadyPublishedPanel, RelatedPagesPanel


class ArticlePage(VectorIndexedMixin, AIBackendsMixin, Page):
    intro = models.CharField(max_length=255, blank=True)
    body = RichTextField(blank=True)
    summary = models.TextField(blank=True)

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
    content_panels = [
        *Page.content_panels,
        FieldPanel("intro"),
        FieldPanel("body"),
        FieldPanel("summary"),
        RelatedPagesPanel("related_pages", heading="Related pages"),
        AlreadyPublishedPanel(),
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

    def __str__(self) -> str:
        return self.title
