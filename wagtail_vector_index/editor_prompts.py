"""The prompts of the field suggestions (``wagtail_vector_index.panels.AIFieldPanel``).

Built-in prompts (``title``, ``search_description``) ship as translatable
defaults; a site changes them or adds its own in Settings › AI settings,
stored in ``AISettings.editor_prompts`` as ``{name: {"text": ..., "alias":
...}}`` (a built-in prompt stored with only an alias keeps its default
text). A prompt's text may use the placeholders of :data:`PLACEHOLDERS`
and nothing else: it is filled in by :func:`render`, which substitutes the
values as plain text (no attribute access, no format specs), so a prompt an
editor wrote can never reach into Python objects.

This module sits below the admin views in the package's layers: it reads
the site's setting through Django's app registry at call time and never
imports ``models.py``.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from wagtail_vector_index.exceptions import WagtailVectorIndexError

#: The model holding a site's prompts, by its label.
MODEL = "wagtail_vector_index.AISettings"

#: The placeholders a prompt's text may use, and what each one becomes.
PLACEHOLDERS = {
    "content": _(
        "the text of the page or object being edited (unsaved changes included)"
    ),
    "field": _("the name of the field the suggestions are for"),
    "max_length": _("the most characters the field takes"),
    "language": _("the language of the page (its locale), in English"),
}

#: The chat alias a prompt uses unless the site chooses another.
DEFAULT_ALIAS = "default"

#: The most characters of ``{content}`` sent (the start of the page's text).
CONTENT_LIMIT = 8000

#: ``{max_length}`` for a field without a ``max_length`` and a prompt
#: without its own bound.
FALLBACK_MAX_LENGTH = 300


@dataclass(frozen=True)
class BuiltinPrompt:
    text: Any  # A lazy translation.
    #: ``{max_length}`` when the field has none (a TextField).
    max_length: int | None = None


BUILTIN_PROMPTS: dict[str, BuiltinPrompt] = {
    "title": BuiltinPrompt(
        _(
            "Write a title for the field “{field}” of the web page whose content "
            "follows. Write it in {language}, at most {max_length} characters "
            "long: clear, specific and inviting, without quotation marks.\n\n"
            "Content:\n{content}"
        ),
    ),
    "search_description": BuiltinPrompt(
        _(
            "Write the description that search engines show under the page's "
            "title in their results (the field “{field}”), from the web page "
            "whose content follows. Write it in {language}, at most {max_length} "
            "characters long: one or two sentences that tell a reader what the "
            "page offers, without quotation marks.\n\n"
            "Content:\n{content}"
        ),
        max_length=160,
    ),
}


class UnknownEditorPromptError(WagtailVectorIndexError):
    """A field panel asked for a prompt that neither the package nor the site
    defines."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            gettext(
                "There is no editor prompt named “%(name)s” (known prompts: "
                "%(known)s). Add it in Settings › AI settings."
            )
            % {"name": name, "known": ", ".join(known) or "–"}
        )


@dataclass(frozen=True)
class EditorPrompt:
    """A prompt as a site uses it."""

    name: str
    text: str
    alias: str
    builtin: bool
    #: ``{max_length}`` when the field has no ``max_length`` (``None``: the
    #: fallback).
    max_length: int | None = None
    #: Whether the site changed the built-in text.
    changed: bool = False


def _placeholder_error(message: str, **values: Any) -> ValidationError:
    return ValidationError(message % values if values else message, code="placeholder")


def parse(text: str) -> list[tuple[str, str | None]]:
    """``text`` as ``(literal, placeholder or None)`` pieces.

    Raises :class:`ValidationError` naming the problem: malformed braces,
    a placeholder that is not in :data:`PLACEHOLDERS`, or a placeholder
    with a format spec, a conversion or an attribute/index access.
    """
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as error:
        raise _placeholder_error(
            gettext(
                "The braces do not match (%(problem)s). Write placeholders as "
                "{content}; write {{ and }} for a brace itself."
            ),
            problem=str(error),
        ) from None
    result: list[tuple[str, str | None]] = []
    known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    for literal, name, spec, conversion in pieces:
        if name is None:
            result.append((literal, None))
            continue
        if name == "":
            raise _placeholder_error(
                gettext(
                    "Empty braces {} are not a placeholder. Known placeholders: "
                    "%(known)s."
                ),
                known=known,
            )
        if name not in PLACEHOLDERS or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            raise _placeholder_error(
                gettext(
                    "Unknown placeholder %(placeholder)s. Known placeholders: "
                    "%(known)s."
                ),
                placeholder=shown,
                known=known,
            )
        result.append((literal, name))
    return result


def validate_text(text: str) -> None:
    """Raise :class:`ValidationError` if ``text`` is not a usable prompt."""
    parse(text)


def render(text: str, values: dict[str, Any]) -> str:
    """``text`` with its placeholders replaced by ``values`` (as text)."""
    return "".join(
        literal + ("" if name is None else str(values.get(name, "")))
        for literal, name in parse(text)
    )


def stored_prompts(site: Any) -> dict[str, dict[str, str]]:
    """The prompts stored for ``site`` (``{}`` without a site or setting),
    reduced to well-formed entries."""
    if site is None:
        return {}
    setting = apps.get_model(MODEL).objects.filter(site=site).first()
    raw = getattr(setting, "editor_prompts", None) or {}
    if not isinstance(raw, dict):
        return {}
    cleaned: dict[str, dict[str, str]] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict):
            continue
        cleaned[str(name)] = {
            key: str(entry[key])
            for key in ("text", "alias")
            if isinstance(entry.get(key), str) and entry[key]
        }
    return cleaned


def get_prompts(site: Any) -> dict[str, EditorPrompt]:
    """Every prompt ``site`` can use, built-in first, by name."""
    stored = stored_prompts(site)
    prompts: dict[str, EditorPrompt] = {}
    for name, builtin in BUILTIN_PROMPTS.items():
        entry = stored.get(name, {})
        prompts[name] = EditorPrompt(
            name=name,
            text=entry.get("text") or str(builtin.text),
            alias=entry.get("alias") or DEFAULT_ALIAS,
            builtin=True,
            max_length=builtin.max_length,
            changed=bool(entry.get("text")),
        )
    for name, entry in stored.items():
        if name in prompts or not entry.get("text"):
            continue
        prompts[name] = EditorPrompt(
            name=name,
            text=entry["text"],
            alias=entry.get("alias") or DEFAULT_ALIAS,
            builtin=False,
        )
    return prompts


def get_prompt(name: str, site: Any) -> EditorPrompt:
    """The prompt ``name`` as ``site`` uses it; raises
    :class:`UnknownEditorPromptError`."""
    prompts = get_prompts(site)
    if name not in prompts:
        raise UnknownEditorPromptError(name, sorted(prompts))
    return prompts[name]


#: The instruction sent as the system message before a prompt: how to
#: answer, in the one shape :func:`parse_alternatives` reads best. Written
#: for the model, not for editors, so not translated. (The offline echo
#: backend recognises it: keep the two in step.)
SYSTEM_PROMPT = (
    "You suggest text for one field of a web page in a content management "
    "system. Reply with a JSON array of exactly {count} different suggestions, "
    "each a plain string, and nothing else."
)

_NUMBERING = re.compile(r"^\s*(?:\d+\s*[.):-]|[-*•]|#+)\s*")
_QUOTES = "\"'“”„‘’«»`"


def _clean(text: str) -> str:
    text = " ".join(str(text).split())
    text = _NUMBERING.sub("", text, count=1)
    for _round in range(2):
        text = text.strip().strip(_QUOTES).strip()
    return text


def truncate(text: str, max_length: int) -> str:
    """``text`` cut to ``max_length`` characters, at a word boundary where
    one is near enough."""
    if len(text) <= max_length:
        return text
    cut = text[:max_length]
    space = cut.rfind(" ")
    if space >= max_length * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—")


def parse_alternatives(reply: str, count: int, max_length: int) -> list[str]:
    """Up to ``count`` distinct, non-empty suggestions from a model's reply.

    The reply should be a JSON array of strings; a model that wraps it in a
    code fence or a sentence, or answers with a numbered or bulleted list,
    or with one suggestion per line, is understood too. Quotation marks and
    numbering are stripped, each suggestion cut to ``max_length``.
    """
    items: list[Any] = []
    start, end = reply.find("["), reply.rfind("]")
    if 0 <= start < end:
        try:
            found = json.loads(reply[start : end + 1])
        except ValueError:
            found = None
        if isinstance(found, list):
            items = [item for item in found if isinstance(item, str | int | float)]
    if not items:
        lines = reply.replace("```", "\n").splitlines()
        # A line ending with a colon introduces the list ("Here are...:").
        items = [
            line
            for line in lines
            if line.strip()
            and line.strip() != "json"
            and not line.strip().endswith(":")
        ]
    seen: set[str] = set()
    alternatives = []
    for item in items:
        text = truncate(_clean(str(item)), max_length)
        if not text or text.casefold() in seen:
            continue
        seen.add(text.casefold())
        alternatives.append(text)
        if len(alternatives) == count:
            break
    return alternatives


def stored_prompt_sets() -> Iterable[dict[str, Any]]:
    """The stored prompts of every site (for the system checks)."""
    for raw in apps.get_model(MODEL).objects.values_list("editor_prompts", flat=True):
        if isinstance(raw, dict):
            yield raw
