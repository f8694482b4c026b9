"""System checks of the pgvector storage app."""

from __future__ import annotations

from typing import Any

from django.core import checks
from django.db import connections, router
from django.utils.translation import gettext as _

ID = "wagtail_vector_index.pgvector.{}"


@checks.register(checks.Tags.models)
def check_database(app_configs: Any = None, **kwargs: Any) -> list:
    """The table can only live in PostgreSQL (pgvector is an extension of it)."""
    from django.apps import apps

    if not apps.is_installed("wagtail_vector_index.contrib.pgvector"):
        # Registered when this module is imported, which a project (or a
        # test reading the package's modules) may do without the app.
        return []
    from wagtail_vector_index.contrib.pgvector.models import PgvectorChunk

    alias = router.db_for_write(PgvectorChunk)
    vendor = connections[alias].vendor
    if vendor == "postgresql":
        return []
    return [
        checks.Error(
            _(
                # Translators: %(app)s is the name of a Django app, %(alias)s the
                # alias of a database in DATABASES, %(vendor)s the name of a
                # database engine (SQLite, MySQL).
                '"%(app)s" is installed but the database "%(alias)s" is '
                "%(vendor)s, not PostgreSQL."
            )
            % {
                "app": "wagtail_vector_index.contrib.pgvector",
                "alias": alias,
                "vendor": connections[alias].display_name,
            },
            hint=_(
                # Translators: STORAGE and WAGTAIL_VECTOR_INDEX are names in the
                # settings.
                "The pgvector storage needs PostgreSQL with the pgvector extension. "
                "Remove the app from INSTALLED_APPS (and the pgvector STORAGE from "
                "WAGTAIL_VECTOR_INDEX) to keep vectors in this database, or move "
                "the site to PostgreSQL."
            ),
            id=ID.format("E001"),
        )
    ]
