"""The table of the pgvector storage (PostgreSQL only)."""

from __future__ import annotations

from django.db import models

from wagtail_vector_index.contrib.pgvector.fields import VectorField


class PgvectorChunk(models.Model):
    """One chunk of an object's text and its vector, in a pgvector column.

    Like ``EmbeddingChunk`` (the default storage's table), with the vector in
    a ``vector`` column that PostgreSQL can search. Rows of all indexes share
    the table; each index's active build has its own HNSW index (a partial
    index created when the build is activated, see
    ``wagtail_vector_index.index.storage.pgvector``).
    """

    index_name = models.CharField(max_length=255)
    build = models.PositiveIntegerField()
    content_type = models.ForeignKey(
        "contenttypes.ContentType", on_delete=models.CASCADE, related_name="+"
    )
    object_id = models.CharField(max_length=255)
    position = models.PositiveIntegerField()
    text = models.TextField()
    content_hash = models.CharField(max_length=64)
    embedding = VectorField()
    #: What scoped searches filter on inside PostgreSQL: the object's tree
    #: path (pages; ``""`` otherwise) and its locale's id (translatable
    #: objects), see ``wagtail_vector_index.index.storage.types.Where``.
    path = models.CharField(max_length=255, blank=True, default="")
    locale_id = models.IntegerField(null=True, blank=True)

    class Meta:
        db_table = "wagtail_vector_index_pgvector_chunk"
        verbose_name = "embedding chunk (pgvector)"
        indexes = [
            models.Index(fields=["index_name", "build"], name="wvi_pgvector_build"),
            models.Index(
                fields=["index_name", "build", "content_type", "object_id"],
                name="wvi_pgvector_object",
            ),
        ]

    def __str__(self) -> str:
        where = f"{self.content_type_id}/{self.object_id}#{self.position}"
        return f"{self.index_name}: {where}"
