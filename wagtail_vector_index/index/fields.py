"""Which fields of a model feed its embeddings."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.utils.html import strip_tags
from django.utils.text import capfirst
from django.utils.translation import get_language


@dataclass(frozen=True)
class EmbeddingField:
    """A field (or method) whose text is embedded.

    ``important`` fields (a title, say) are repeated at the top of every chunk
    of the object, so each chunk carries the context that says what it is
    about.
    """

    field_name: str
    important: bool = False
    label: str | None = None

    def get_label(self, obj: Any) -> str:
        if self.label:
            return self.label
        return _label(type(obj), self.field_name, get_language())

    def get_text(self, obj: Any) -> str:
        """The field's value as plain text (HTML and rich text stripped)."""
        value = getattr(obj, self.field_name, "")
        if callable(value):
            value = value()
        if value is None:
            return ""
        if hasattr(value, "render_as_block") or hasattr(value, "__html__"):
            value = value.__html__() if hasattr(value, "__html__") else str(value)
        text = strip_tags(str(value))
        return " ".join(text.split()) if self.important else text.strip()


@functools.lru_cache(maxsize=1024)
def _label(model: type, field_name: str, language: str | None) -> str:
    """A field's label in ``language`` (the verbose name, translated once
    per language: an update labels every object's fields, and turning a
    lazy verbose name into text cost as much as chunking the object)."""
    try:
        return capfirst(str(model._meta.get_field(field_name).verbose_name))
    except Exception:  # A method or property rather than a model field.
        return capfirst(field_name.replace("_", " "))
