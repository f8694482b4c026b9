"""The mixin that gives a model a vector index of its own.

``AIBackendsMixin`` (site-aware backends for a page) lives in
:mod:`wagtail_vector_index.pages`; it stays importable from here, where
migrations of models using it refer to it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from wagtail_vector_index.index.fields import EmbeddingField
from wagtail_vector_index.pages import AIBackendsMixin

__all__ = ["AIBackendsMixin", "VectorIndexedMixin"]


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
    ``max_chunk_tokens``, ``chunk_overlap``, ``prompt``, ``search_mode``,
    ``hybrid_weights``, ``rrf_k`` or ``include_restricted``.
    """

    embedding_fields: ClassVar[list[EmbeddingField]] = []
    vector_index_options: ClassVar[dict[str, Any]] = {}
    vector_index = _IndexDescriptor()
