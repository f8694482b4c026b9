"""Embedding backends for the retrieval tests."""

import re

from wagtail_vector_index.ai_utils.backends.offline import (
    HashingEmbeddingBackend,
    hashed_vector,
)

#: Words holding a digit: product codes ("XJ-9000"), numbers, versions.
_CODES = re.compile(r"\S*\d\S*")


class CodeBlindEmbeddingBackend(HashingEmbeddingBackend):
    """Hashing embeddings that never see words holding a digit: the blind
    spot of semantic models for exact terms, made total, so that a test can
    tell what the keyword ranking adds."""

    def _embed_batch(self, batch, parameters):
        dimensions = self.embedding_output_dimensions
        return [hashed_vector(_CODES.sub(" ", text), dimensions) for text in batch]
