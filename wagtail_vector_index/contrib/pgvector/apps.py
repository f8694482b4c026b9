from django.apps import AppConfig


class PgvectorStorageConfig(AppConfig):
    """The table of the pgvector storage; install it on PostgreSQL only."""

    name = "wagtail_vector_index.contrib.pgvector"
    # Not "pgvector": that label is too likely to be taken by another app.
    label = "wagtail_vector_index_pgvector"
    verbose_name = "Vector index storage (PostgreSQL + pgvector)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from wagtail_vector_index.contrib.pgvector import checks  # noqa: F401
