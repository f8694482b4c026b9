"""Mixins for models: a vector index of their own, and site-aware backends."""

from __future__ import annotations

from typing import Any, ClassVar

from wagtail_vector_index import ai
from wagtail_vector_index.index.fields import EmbeddingField


class _IndexDescriptor:
    """Builds the model's index on first use (NumPy is imported then, not
    when models load)."""

    def __get__(self, instance: Any, owner: type) -> Any:
        index = owner.__dict__.get("_vector_index")
        if index is None:
            from wagtail_vector_index.index.base import ModelVectorIndex

            index = ModelVectorIndex(
                owner, **getattr(owner, "vector_index_options", {})
            )
            owner._vector_index = index
        return index


class VectorIndexedMixin:
    """Gives a model ``Model.vector_index``: search, similar objects, answers.

    ``embedding_fields`` says what is embedded::

        class BlogPage(VectorIndexedMixin, Page):
            embedding_fields = [EmbeddingField("title", important=True),
                                EmbeddingField("body")]

    ``vector_index_options`` may set ``embedding_alias``, ``chat_alias``,
    ``max_chunk_tokens``, ``chunk_overlap`` or ``prompt``.
    """

    embedding_fields: ClassVar[list[EmbeddingField]] = []
    vector_index_options: ClassVar[dict[str, Any]] = {}
    vector_index = _IndexDescriptor()


class AIBackendsMixin:
    """Site-aware backends for a page: ``self.get_chat_backend(alias)``.

    The page's own site decides which per-site parameter overrides apply, so
    a page on site B is answered with site B's temperature::

        summary = self.get_chat_backend().chat(messages=[...]).text
    """

    def _site_for_backends(self) -> Any:
        get_site = getattr(self, "get_site", None)
        return get_site() if get_site is not None else None

    def get_chat_backend(self, alias: str = "default") -> Any:
        return ai.get_chat_backend(alias, site=self._site_for_backends())

    def get_embedding_backend(self, alias: str = "default") -> Any:
        return ai.get_embedding_backend(alias, site=self._site_for_backends())
