"""The table the index tests look into, whichever storage they run against
(tests/settings_postgres.py switches them to pgvector)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from wagtail_vector_index.models import EmbeddingChunk


def chunk_model() -> Any:
    """The model holding the chunks of the storage under test."""
    if getattr(settings, "WVI_TEST_STORAGE", None):
        from wagtail_vector_index.contrib.pgvector.models import PgvectorChunk

        return PgvectorChunk
    return EmbeddingChunk


def stored_vectors(index: Any) -> list[tuple[str, Any]]:
    """``(object_id, vector)`` of every chunk in the index's active build."""
    storage = index.storage
    state = storage.state()
    objects = (
        storage.chunks(state.active_build)
        .values_list("content_type_id", "object_id")
        .distinct()
    )
    return [
        (object_id, vector)
        for content_type_id, object_id in objects
        for vector in storage.object_vectors(state, content_type_id, object_id)
    ]
