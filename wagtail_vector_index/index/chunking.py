"""Split an object's text into chunks that fit the embedding model."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# The chunks' hash is the embedding cache's key: the same function.
from wagtail_vector_index.embedding_cache import content_hash


@dataclass(frozen=True)
class Chunk:
    """One chunk of an object's text (its hash computed once)."""

    position: int
    text: str

    @functools.cached_property
    def content_hash(self) -> str:
        return content_hash(self.text)


def split_tokens(tokens: Sequence[Any], size: int, overlap: int) -> list[Sequence[Any]]:
    """Windows of ``size`` tokens, each starting ``overlap`` tokens before the
    previous one ended."""
    if size < 1:
        raise ValueError("size must be at least 1")
    overlap = max(0, min(overlap, size - 1))
    windows = []
    start = 0
    while start < len(tokens):
        windows.append(tokens[start : start + size])
        if start + size >= len(tokens):
            break
        start += size - overlap
    return windows


def chunk_text(
    backend: Any,
    *,
    important: Sequence[tuple[str, str]],
    body: Sequence[tuple[str, str]],
    max_tokens: int,
    overlap: int,
) -> list[Chunk]:
    """Chunks of ``body`` within ``max_tokens``, each led by the important
    fields.

    ``important`` and ``body`` are ``(label, text)`` pairs. Token counts come
    from the embedding backend's tokenizer (LiteLLM's for LiteLLM models).
    """
    header = "\n".join(f"{label}: {text}" for label, text in important if text)
    header_tokens = backend.encode(header + "\n\n") if header else []
    # The header may take at most half of a chunk; the body gets the rest.
    if len(header_tokens) > max_tokens // 2:
        header_tokens = header_tokens[: max_tokens // 2]
        header = backend.decode(header_tokens).rstrip()
    prefix = f"{header}\n\n" if header else ""
    text = "\n\n".join(f"{label}: {value}" for label, value in body if value.strip())
    if not text:
        return [Chunk(0, header)] if header else []
    budget = max_tokens - len(header_tokens)
    tokens = backend.encode(text)
    if len(tokens) <= budget:
        # One window: the text itself (what decoding its tokens gives back,
        # without the cost of decoding).
        return [Chunk(0, prefix + text.strip())]
    windows = split_tokens(tokens, budget, overlap)
    return [
        Chunk(position, prefix + backend.decode(list(window)).strip())
        for position, window in enumerate(windows)
    ]
