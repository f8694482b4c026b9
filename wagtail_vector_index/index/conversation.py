"""Answering in a conversation, with numbered citations.

``query(question, history=[...])`` takes the earlier turns of a conversation
(``{"role": "user" | "assistant", "content": ...}`` dicts, oldest first).
A follow-up ("And in autumn?") means nothing to a search on its own, so the
retrieval uses a *standalone question*: one extra chat call rewrites the last
question with what the conversation says (``condense_history`` on the index,
or ``condense=`` on the call). The answer itself is written with the whole
history before the question.

The sources go to the model numbered, ``[1]`` to ``[n]`` in the order of
``sources``, and the prompt asks it to cite them so; :func:`citations` reads
the numbers back out of an answer (streamed or not), keeping only numbers
that name a source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

#: Read by :meth:`VectorIndex.query` as the system prompt of the extra call.
CONDENSE_PROMPT = (
    "Rewrite the user's last message as a standalone question that can be "
    "understood without the conversation before it, in the same language. "
    "Answer with the question only."
)
#: The longest standalone question used for retrieval (a model answering
#: instead of rewriting must not send a page of text to the search).
MAX_STANDALONE_CHARS = 500
#: Earlier turns sent along (the most recent ones).
MAX_HISTORY_TURNS = 20

_CITATION = re.compile(r"\[(\d{1,3})\]")
_ROLES = ("user", "assistant")


def check_history(history: Any) -> list[dict[str, str]]:
    """``history`` as a list of turns, or a clear error."""
    if history is None:
        return []
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise TypeError(
            'history must be a list of {"role": "user" | "assistant", '
            f'"content": ...}} dicts, not {type(history).__name__}.'
        )
    turns = []
    for position, turn in enumerate(history):
        if not isinstance(turn, dict):
            raise TypeError(
                f"history[{position}] must be a dict, not {type(turn).__name__}."
            )
        if turn.get("role") not in _ROLES:
            raise ValueError(
                f'history[{position}]["role"] must be "user" or "assistant", '
                f"not {turn.get('role')!r}."
            )
        if not isinstance(turn.get("content"), str):
            raise TypeError(f'history[{position}]["content"] must be a string.')
        turns.append({"role": turn["role"], "content": turn["content"]})
    return turns[-MAX_HISTORY_TURNS:]


def condense_messages(history: list[dict[str, str]], question: str) -> list[dict]:
    """The messages of the call that rewrites ``question`` as a standalone
    question."""
    return [
        {"role": "system", "content": CONDENSE_PROMPT},
        *history,
        {"role": "user", "content": question},
    ]


def standalone_question(answer: str, question: str) -> str:
    """The rewritten question from the model's ``answer`` (the original
    ``question`` if the answer is empty)."""
    text = " ".join(answer.split()).strip().strip('"').strip()
    if not text:
        return question
    return text[:MAX_STANDALONE_CHARS]


def context(texts: Sequence[str]) -> str:
    """The sources as the prompt gives them: ``[1] text``, one per paragraph."""
    return "\n\n".join(
        f"[{number}] {text}" for number, text in enumerate(texts, start=1)
    )


def citations(answer: str, count: int) -> list[int]:
    """The source numbers ``answer`` cites (``[2]``), in order of first
    citation, each once; numbers that name no source are left out."""
    found: list[int] = []
    for match in _CITATION.finditer(answer):
        number = int(match.group(1))
        if 1 <= number <= count and number not in found:
            found.append(number)
    return found
