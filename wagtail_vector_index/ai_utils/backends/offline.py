"""Offline backends for development, demos and tests: no network, no cost.

``EchoChatBackend`` answers by quoting the last user message and streams the
answer word by word; sent an image, it says what it can tell without seeing
it (its name and size), labelled as offline. ``HashingEmbeddingBackend``
embeds texts by feature hashing of their words, so texts that share words
get a higher cosine similarity: good enough to try search and similar-page
features without a provider, and deterministic across processes and machines.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
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
    IMAGE_PART_TOKENS,
    AIResponse,
    AIStreamingResponse,
    ChatMessage,
    StreamPart,
    StreamState,
    Usage,
    image_parts,
    message_text,
)

_WORD = re.compile(r"\w+", re.UNICODE)
_QUOTED = re.compile(r"[\"“«„]([^\"”»“\n]{1,200})[\"”»“]")


def describe_image_offline(text: str, url: str) -> str:
    """What the echo backend answers for an image: the last quoted name in
    the prompt (image prompts quote the image's title) and, for a ``data:``
    URL, the picture's size, labelled as offline."""
    names = _QUOTED.findall(text)
    size = _image_size(url)
    if names and size:
        return f'(offline) An image named "{names[-1]}", {size}.'
    if names:
        return f'(offline) An image named "{names[-1]}".'
    if size:
        return f"(offline) An image of {size}."
    return "(offline) An image; the offline backend cannot see it."


def _image_size(url: str) -> str | None:
    if not url.startswith("data:") or ";base64," not in url:
        return None
    try:
        from PIL import Image

        data = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
        with Image.open(io.BytesIO(data)) as picture:
            return f"{picture.width}×{picture.height} pixels"
    except Exception:  # Not an image Pillow reads: say nothing of its size.
        return None


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
        # It takes images (and says it cannot see them), so the image
        # features can be tried offline.
        return ModelDescription(
            token_limit=1_000_000, supported_parameters=None, supports_vision=True
        )

    def answer(self, messages: list[ChatMessage], parameters: dict) -> str:
        last_message = next(
            (m for m in reversed(messages) if m["role"] == "user"), messages[-1]
        )
        images = image_parts(last_message["content"])
        last = message_text(last_message["content"])
        if images:
            return describe_image_offline(last, images[0])
        settings = ", ".join(
            f"{key}={value}"
            for key, value in sorted(parameters.items())
            if key != "delay"
        )
        suffix = f" (parameters: {settings})" if settings else ""
        name = "" if self.config.model_id == "echo" else f" {self.config.model_id}"
        answer = f"[offline echo{name}] You said: {last}{suffix}"
        system = " ".join(
            message_text(m["content"]) for m in messages if m["role"] == "system"
        )
        if "standalone question" in system:
            # Asked to rewrite a conversation's last question (vector index
            # queries with a history): the question as it is.
            return last
        # Addition for the editor's field suggestions (AIFieldPanel): asked
        # for "a JSON array of exactly N" suggestions (editor_prompts'
        # SYSTEM_PROMPT), answer such an array made of the content's first
        # lines and sentences, labelled offline, so the editor shows
        # alternatives a reader understands.
        wanted = _ALTERNATIVES.search(system)
        if wanted:
            return _offline_alternatives(last, int(wanted.group(1)))
        # Given sources to answer from (as vector index queries give them,
        # numbered "[1] ..."), quote and cite the best one, so the offline
        # answer still says something.
        if "[1] " in system:
            source = system.split("[1] ", 1)[1].split("\n\n[2] ", 1)[0]
            source = " ".join(source.split())
            if len(source) > 300:
                source = source[:299] + "…"
            answer += f". The best matching source says: {source} [1]"
        return answer

    def _usage(self, messages: list[ChatMessage], answer: str) -> Usage:
        prompt = sum(
            len(_WORD.findall(message_text(m["content"])))
            + IMAGE_PART_TOKENS * len(image_parts(m["content"]))
            for m in messages
        )
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

        state = StreamState()

        def parts() -> Iterator[StreamPart]:
            for word in self._words(answer):
                if delay:
                    time.sleep(delay)
                yield {"index": 0, "content": word}
            state.usage = self._usage(messages, answer)
            state.cost = 0.0

        return AIStreamingResponse(
            parts=parts(), model_id=self.config.model_id, state=state
        )

    async def _achat_stream(
        self, messages: list[ChatMessage], parameters: dict
    ) -> AIStreamingResponse:
        answer = self.answer(messages, parameters)
        delay = float(parameters.get("delay", 0) or 0)

        state = StreamState()

        async def parts() -> AsyncIterator[StreamPart]:
            for word in self._words(answer):
                if delay:
                    await asyncio.sleep(delay)
                yield {"index": 0, "content": word}
            state.usage = self._usage(messages, answer)
            state.cost = 0.0

        return AIStreamingResponse(
            aparts=parts(), model_id=self.config.model_id, state=state
        )


_ALTERNATIVES = re.compile(r"JSON array of exactly (\d+)")


def _offline_alternatives(prompt: str, count: int) -> str:
    """A JSON array of ``count`` offline suggestions from the text after the
    prompt's last blank line (its content, in the built-in prompts)."""
    import json

    content = prompt.rsplit("\n\n", 1)[-1]
    if content.lower().startswith("content:"):
        content = content.split(":", 1)[1]
    pieces = []
    for line in content.splitlines():
        for sentence in re.split(r"(?<=[.!?])\s+", line):
            words = sentence.split()
            if words:
                pieces.append(" ".join(words[:12]).rstrip(".,;:"))
    pieces = list(dict.fromkeys(pieces)) or ["(no content yet)"]
    count = max(1, min(count, 10))
    answers = [
        f"[offline echo] {pieces[i % len(pieces)]}"
        + (f" ({i // len(pieces) + 1})" if i >= len(pieces) else "")
        for i in range(count)
    ]
    return json.dumps(answers, ensure_ascii=False)


#: Words too common to say what a text is about (English).
STOP_WORDS = frozenset(
    """a about after all also am an and any are as at be been before being both
    but by can could did do does each even every few for from get gets had has
    have he her here his how i if in into is it its just like may me more most
    much must my no not now of off on once one only or other our out over own
    same she should so some such than that the their them then there these
    they this those through to too up us very was way we well were what when
    where which while who why will with would you your""".split()
)


def _features(text: str) -> Iterator[tuple[str, float]]:
    """Words (weight 1) and their 4-letter pieces (weight 0.5 in all, shared
    by the pieces), so "grow", "grows" and "growing" come out related."""
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        yield word, 1.0
        padded = f"<{word}>"
        grams = [padded[i : i + 4] for i in range(max(1, len(padded) - 3))]
        for gram in grams:
            yield f"#{gram}", 0.25 / len(grams)


def hashed_vector(text: str, dimensions: int) -> list[float]:
    """A unit vector of ``text``'s features, hashed into ``dimensions``.

    The features are the lower-cased words, except common English ones
    (:data:`STOP_WORDS`), and their 4-letter pieces. Each adds its weight, with
    a sign from its hash, to one coordinate; a real hash function rather than
    Python's randomised ``hash()`` keeps vectors identical in every process. A
    text without words gives the zero vector.
    """
    weights: dict[str, float] = {}
    counts: dict[str, int] = {}
    for feature, weight in _features(text):
        weights[feature] = weight
        counts[feature] = counts.get(feature, 0) + 1
    vector = [0.0] * dimensions
    for feature, count in counts.items():
        # Sublinear counts: a word said ten times is not ten times the topic.
        weight = weights[feature] * (1.0 + math.log(count))
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        number = int.from_bytes(digest, "little")
        vector[number % dimensions] += weight if (number >> 63) & 1 else -weight
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
