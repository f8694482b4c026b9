"""Offline backends for development, demos and tests: no network, no cost.

``EchoChatBackend`` answers by quoting the last user message and streams the
answer word by word. ``HashingEmbeddingBackend`` embeds texts by feature
hashing of their words, so texts that share words get a higher cosine
similarity: good enough to try search and similar-page features without a
provider, and deterministic across processes and machines.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from wagtail_vector_index.ai_utils.backends.base import (
    BaseChatBackend,
    BaseEmbeddingBackend,
    ModelDescription,
)
from wagtail_vector_index.ai_utils.types import (
    AIResponse,
    AIStreamingResponse,
    ChatMessage,
    StreamPart,
    Usage,
)

_WORD = re.compile(r"\w+", re.UNICODE)


class EchoChatBackend(BaseChatBackend):
    """Answers without a model: quotes the last user message back.

    ``DEFAULT_PARAMETERS`` may hold ``delay`` (seconds between streamed words,
    default 0) so the streaming user interface can be seen working.
    """

    label = "Echo (offline)"
    offline = True
    default_model_id = "echo"

    @classmethod
    def describe_model(cls, model_id: str) -> ModelDescription:
        return ModelDescription(token_limit=1_000_000, supported_parameters=None)

    def answer(self, messages: list[ChatMessage], parameters: dict) -> str:
        last = next(
            (m["content"] for m in reversed(messages) if m["role"] == "user"),
            messages[-1]["content"],
        )
        settings = ", ".join(
            f"{key}={value}"
            for key, value in sorted(parameters.items())
            if key != "delay"
        )
        suffix = f" (parameters: {settings})" if settings else ""
        name = "" if self.config.model_id == "echo" else f" {self.config.model_id}"
        return f"[offline echo{name}] You said: {last}{suffix}"

    def _usage(self, messages: list[ChatMessage], answer: str) -> Usage:
        prompt = sum(len(_WORD.findall(m["content"])) for m in messages)
        completion = len(_WORD.findall(answer))
        return Usage(prompt, completion, prompt + completion)

    def _words(self, answer: str) -> list[str]:
        return re.findall(r"\S+\s*", answer)

    def _chat(self, messages: list[ChatMessage], parameters: dict) -> AIResponse:
        answer = self.answer(messages, parameters)
        return AIResponse(
            choices=[answer],
            usage=self._usage(messages, answer),
            cost=0.0,
            model_id=self.config.model_id,
        )

    async def _achat(self, messages: list[ChatMessage], parameters: dict) -> AIResponse:
        return self._chat(messages, parameters)

    def _chat_stream(
        self, messages: list[ChatMessage], parameters: dict
    ) -> AIStreamingResponse:
        answer = self.answer(messages, parameters)
        delay = float(parameters.get("delay", 0) or 0)

        def parts() -> Iterator[StreamPart]:
            for word in self._words(answer):
                if delay:
                    time.sleep(delay)
                yield {"index": 0, "content": word}
            response.usage = self._usage(messages, answer)
            response.cost = 0.0

        response = AIStreamingResponse(parts=parts(), model_id=self.config.model_id)
        return response

    async def _achat_stream(
        self, messages: list[ChatMessage], parameters: dict
    ) -> AIStreamingResponse:
        answer = self.answer(messages, parameters)
        delay = float(parameters.get("delay", 0) or 0)

        async def parts() -> AsyncIterator[StreamPart]:
            for word in self._words(answer):
                if delay:
                    await asyncio.sleep(delay)
                yield {"index": 0, "content": word}
            response.usage = self._usage(messages, answer)
            response.cost = 0.0

        response = AIStreamingResponse(aparts=parts(), model_id=self.config.model_id)
        return response


#: Words too common to say what a text is about (English).
STOP_WORDS = frozenset(
    """a about an and are as at be but by for from has have how i if in into is
    it its of on or that the their then there these this to was we were what
    when where which who why will with you your""".split()
)


def hashed_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector of ``text``'s lower-cased words, hashed into ``dimensions``.

    Common English words (:data:`STOP_WORDS`) are left out.

    Each word adds +1 or -1 (from its hash) to one coordinate; a hash per
    word, not Python's randomised ``hash()``, keeps vectors identical in every
    process. A text without words gives the zero vector.
    """
    vector = [0.0] * dimensions
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        number = int.from_bytes(digest, "little")
        vector[number % dimensions] += 1.0 if (number >> 63) & 1 else -1.0
    norm = math.sqrt(sum(value * value for value in vector))
    return [value / norm for value in vector] if norm else vector


class HashingEmbeddingBackend(BaseEmbeddingBackend):
    """Offline embeddings by feature hashing of words (see :func:`hashed_vector`)."""

    label = "Hashing (offline)"
    offline = True
    default_model_id = "hashing"

    @classmethod
    def describe_model(cls, model_id: str) -> ModelDescription:
        return ModelDescription(token_limit=1_000_000, embedding_output_dimensions=384)

    def _embed_batch(self, batch: list[str], parameters: dict) -> list[list[float]]:
        dimensions = self.embedding_output_dimensions
        return [hashed_vector(text, dimensions) for text in batch]

    async def _aembed_batch(
        self, batch: list[str], parameters: dict[str, Any]
    ) -> list[list[float]]:
        return self._embed_batch(batch, parameters)
