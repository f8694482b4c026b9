"""Data types exchanged with backends."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict


class ChatMessage(TypedDict):
    """One message of a conversation, as sent to a chat backend.

    ``content`` is a string, or for models that take images a list of parts
    in LiteLLM's (OpenAI's) form: ``{"type": "text", "text": "..."}`` and
    ``{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,..."}}``.
    """

    role: Literal["system", "user", "assistant"] | str
    content: str | list[dict[str, Any]]


#: Tokens an image part is counted as before the provider says (OpenAI's
#: price of a 1024×1024 image in high detail: 4 tiles of 170, plus 85).
IMAGE_PART_TOKENS = 765


def message_text(content: str | list[dict[str, Any]]) -> str:
    """The text of a message's ``content``: the string itself, or its text
    parts joined by blank lines (image parts left out)."""
    if isinstance(content, str):
        return content
    return "\n\n".join(
        part["text"]
        for part in content
        if part.get("type") == "text" and isinstance(part.get("text"), str)
    )


def image_parts(content: str | list[dict[str, Any]]) -> list[str]:
    """The URLs (often ``data:`` URLs) of a message's image parts."""
    if isinstance(content, str):
        return []
    urls = []
    for part in content:
        if part.get("type") != "image_url":
            continue
        image = part.get("image_url")
        urls.append(image.get("url", "") if isinstance(image, dict) else str(image))
    return urls


class StreamPart(TypedDict):
    """One piece of a streamed answer."""

    index: int
    content: str


@dataclass(frozen=True)
class Usage:
    """Token counts reported by the provider (``None`` where not reported)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


@dataclass
class AIResponse:
    """A complete (non-streamed) chat answer."""

    choices: list[str]
    usage: Usage = field(default_factory=Usage)
    #: Cost in US dollars where LiteLLM knows the model's prices, else ``None``.
    cost: float | None = None
    model_id: str = ""
    #: The alias that answered: the backend's own, or one of its
    #: ``CONFIG["FALLBACKS"]``.
    alias: str = ""

    def __str__(self) -> str:
        return self.choices[0] if self.choices else ""

    @property
    def text(self) -> str:
        """The first choice."""
        return str(self)


class StreamState:
    """What a stream learns while it is read (token counts, cost, whether it
    carried an answer, its timings), kept apart from the
    :class:`AIStreamingResponse` so that the generators producing its parts
    can write it without referring to the response: a response that
    nothing refers to any more is then freed (and its provider call ended
    and recorded) at once, by reference counting, never left to the cyclic
    garbage collector."""

    __slots__ = (
        "usage",
        "cost",
        "answered",
        "started_at",
        "time_to_first_token",
        "total_time",
    )

    def __init__(self) -> None:
        self.usage = Usage()
        self.cost: float | None = None
        #: Set by the backend once the stream carried some answer (text or
        #: a tool call); a stream that ends without one is an error.
        self.answered = False
        self.started_at = time.perf_counter()
        self.time_to_first_token: float | None = None
        self.total_time: float | None = None


def _state_property(name: str, doc: str) -> property:
    def get(response: AIStreamingResponse) -> Any:
        return getattr(response.state, name)

    def set_(response: AIStreamingResponse, value: Any) -> None:
        setattr(response.state, name, value)

    return property(get, set_, doc=doc)


class AIStreamingResponse:
    """A streamed chat answer, iterable with ``for`` or ``async for``.

    It yields :class:`StreamPart` dicts. After the stream is exhausted,
    ``usage`` and ``cost`` hold what the provider reported, and
    ``time_to_first_token`` / ``total_time`` the measured seconds. ``close()``
    (or ``aclose()``) ends the underlying provider call early; so does
    dropping the last reference to the response.

    A backend's part generators should write what they learn to ``state``
    (a :class:`StreamState`), not to the response: a generator that refers
    to its response makes a reference cycle.
    """

    usage = _state_property("usage", "Token counts the provider reported.")
    cost = _state_property("cost", "US dollars, where known.")
    answered = _state_property("answered", "Whether the stream carried an answer.")
    started_at = _state_property("started_at", "``time.perf_counter()`` at start.")
    time_to_first_token = _state_property(
        "time_to_first_token", "Seconds until the first text part."
    )
    total_time = _state_property("total_time", "Seconds until the stream ended.")

    def __init__(
        self,
        *,
        parts: Iterator[StreamPart] | None = None,
        aparts: AsyncIterator[StreamPart] | None = None,
        close: Callable[[], Any] | None = None,
        aclose: Callable[[], Any] | None = None,
        model_id: str = "",
        state: StreamState | None = None,
    ) -> None:
        self.state = state if state is not None else StreamState()
        self._parts = parts
        self._aparts = aparts
        self._close = close
        self._aclose = aclose
        self.model_id = model_id
        #: The alias that answered (see :attr:`AIResponse.alias`).
        self.alias = ""
        self.closed = False

    def _mark(self, content: str) -> None:
        if content and self.time_to_first_token is None:
            self.time_to_first_token = time.perf_counter() - self.started_at

    def _finish(self) -> None:
        if self.total_time is None:
            self.total_time = time.perf_counter() - self.started_at

    def __iter__(self) -> Iterator[StreamPart]:
        if self._parts is None:
            raise TypeError("This streaming response is asynchronous: use 'async for'.")
        for part in self._parts:
            self._mark(part["content"])
            yield part
        self._finish()

    async def __aiter__(self) -> AsyncIterator[StreamPart]:
        if self._aparts is None:
            raise TypeError("This streaming response is synchronous: use 'for'.")
        async for part in self._aparts:
            self._mark(part["content"])
            yield part
        self._finish()

    def close(self) -> None:
        """Stop reading and end the provider call."""
        self.closed = True
        self._finish()
        if self._parts is not None and hasattr(self._parts, "close"):
            self._parts.close()
        if self._close is not None:
            self._close()

    async def aclose(self) -> None:
        """Stop reading and end the provider call (asynchronous streams)."""
        self.closed = True
        self._finish()
        if self._aparts is not None and hasattr(self._aparts, "aclose"):
            await self._aparts.aclose()
        if self._aclose is not None:
            await self._aclose()

    def text(self) -> str:
        """Read the whole stream (synchronously) and return the first choice."""
        return "".join(part["content"] for part in self if part["index"] == 0)
