"""The table the index tests look into, whichever storage they run against
(tests/settings_postgres.py switches them to pgvector)."""

from __future__ import annotations

from typing import Any

import numpy as np
from django.conf import settings

from wagtail_vector_index.index.storage import ChunkRow, to_bytes
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


def unit(matrix: Any) -> Any:
    """Rows scaled to length 1 (a zero row stays zero: its cosine is 0)."""
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def fill(storage, content_type, vectors, *, model_id="test-model", prefix="o"):
    """Write and activate one build of ``vectors`` (one object each) in any
    storage; returns its ``IndexState``."""
    build = storage.next_build()
    storage.write_build(
        build,
        (
            ChunkRow(
                content_type,
                f"{prefix}{i}",
                0,
                f"text {prefix}{i}",
                f"{storage.index_name}:{prefix}{i}:{vector[:2].tobytes().hex()}",
                to_bytes(vector),
            )
            for i, vector in enumerate(vectors)
        ),
    )
    return storage.activate(
        build,
        model_id=model_id,
        dimensions=vectors.shape[1],
        object_count=len(vectors),
    )


def brute_force(vectors, query, limit):
    """Object ids (as ``fill`` names them) and cosine similarities, best first."""
    scores = unit(vectors.astype(np.float64)) @ unit(np.asarray(query, np.float64))
    best = np.argsort(-scores, kind="stable")[:limit]
    return [f"o{i}" for i in best], [float(scores[i]) for i in best]
