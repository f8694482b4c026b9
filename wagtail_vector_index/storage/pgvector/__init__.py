"""0.10.0's pgvector app, kept so that its ``INSTALLED_APPS`` entry does not
crash start-up and ``migrate`` drops its table.

It has no models any more. Its label, ``pgvector``, and its first two
migrations' names are 0.10.0's, so Django sees a database migrated by 0.10.0
as having applied them; ``0003_remove_0_10_table`` then drops the table. The
storage that replaces it is ``wagtail_vector_index.contrib.pgvector`` with
``WAGTAIL_VECTOR_INDEX["STORAGE"] =
"wagtail_vector_index.index.storage.pgvector.PgvectorStorage"`` (``manage.py check``
says so: ``wagtail_vector_index.W006``).
"""
