from django.db import models
from wagtail.fields import RichTextField
from wagtail.models import Page
from wagtail.search import index

from wagtail_vector_index.index import (
    AIBackendsMixin,
    EmbeddingField,
    VectorIndexedMixin,
)


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
