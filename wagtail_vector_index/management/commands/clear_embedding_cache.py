"""manage.py clear_embedding_cache: empty the embedding cache."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.utils.translation import gettext

from wagtail_vector_index import embedding_cache


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return gettext(
            "Remove the vectors kept in the embedding cache (all of them, or "
            "one model's with --model). The vector indexes keep theirs; texts "
            "embedded again afterwards are sent to the provider."
        )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--model",
            metavar="MODEL_ID",
            help=gettext(
                "Only this model's entries (its MODEL_ID, as in the settings)."
            ),
        )

    def handle(self, *args: Any, model: str | None = None, **options: Any) -> None:
        removed = embedding_cache.clear(model)
        if model is None:
            message = gettext("Removed %(count)s embedding cache entries.")
        else:
            message = gettext("Removed %(count)s embedding cache entries of %(model)s.")
        self.stdout.write(message % {"count": removed, "model": model})
