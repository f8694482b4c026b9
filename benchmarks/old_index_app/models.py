from django.db import models
from wagtail.models import Page

from wagtail_vector_index.storage.models import EmbeddingField, VectorIndexedMixin


class OldChunk(VectorIndexedMixin, models.Model):
    """One short text per object: one chunk per object, as in the search
    benchmark of this checkout."""

    text = models.TextField()

    embedding_fields = [EmbeddingField("text")]

    def __str__(self) -> str:
        return self.text


class OldArticlePage(VectorIndexedMixin, Page):
    """The rebuild benchmark's page: title and body, as ``ArticlePage``."""

    body = models.TextField()

    embedding_fields = [
        EmbeddingField("title", important=True),
        EmbeddingField("body"),
    ]
