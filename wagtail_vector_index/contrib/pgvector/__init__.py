"""Storage of vector indexes in PostgreSQL with pgvector.

Add ``"wagtail_vector_index.contrib.pgvector"`` to ``INSTALLED_APPS`` (on
PostgreSQL only), run ``migrate``, and set ``WAGTAIL_VECTOR_INDEX["STORAGE"]``
to ``"wagtail_vector_index.index.storage.pgvector.PgvectorStorage"``. See
docs/pgvector.md.
"""
