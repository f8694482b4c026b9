"""The pgvector storage's first import path, kept for settings that name it:
``WAGTAIL_VECTOR_INDEX["STORAGE"] =
"wagtail_vector_index.index.pgvector.PgvectorStorage"`` works as well as
``"wagtail_vector_index.index.storage.pgvector.PgvectorStorage"``, where the
code now lives (see :mod:`wagtail_vector_index.index.storage`)."""

from wagtail_vector_index.index.storage.pgvector import PgvectorStorage

__all__ = ["PgvectorStorage"]
