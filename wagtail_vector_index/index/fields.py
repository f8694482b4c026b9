"""Which fields of a model feed its embeddings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.html import strip_tags
from django.utils.text import capfirst


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
        try:
            return capfirst(str(obj._meta.get_field(self.field_name).verbose_name))
        except Exception:  # A method or property rather than a model field.
            return capfirst(self.field_name.replace("_", " "))

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
