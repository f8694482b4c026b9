"""System checks of the pgvector storage app."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import connections, router

ID = "wagtail_vector_index.pgvector.{}"


@checks.register(checks.Tags.models)
def check_database(app_configs: Any = None, **kwargs: Any) -> list:
    """The table can only live in PostgreSQL (pgvector is an extension of it)."""
    from wagtail_vector_index.contrib.pgvector.models import PgvectorChunk

    alias = router.db_for_write(PgvectorChunk)
    vendor = connections[alias].vendor
    if vendor == "postgresql":
        return []
    return [
        checks.Error(
            f'"wagtail_vector_index.contrib.pgvector" is installed but the database '
            f'"{alias}" is {connections[alias].display_name}, not PostgreSQL.',
            hint="The pgvector storage needs PostgreSQL with the pgvector extension. "
            "Remove the app from INSTALLED_APPS (and the pgvector STORAGE from "
            "WAGTAIL_VECTOR_INDEX) to keep vectors in this database, or move the "
            "site to PostgreSQL.",
            id=ID.format("E001"),
        )
    ]
