from django.apps import AppConfig


class LegacyPgvectorConfig(AppConfig):
    """0.10.0's pgvector app: its migrations drop its table (see the package's
    docstring)."""

    name = "wagtail_vector_index.storage.pgvector"
    # 0.10.0's label: the rows of django_migrations that a 0.10.0 database
    # holds for this app are recorded under it.
    label = "pgvector"
    verbose_name = "Vector index storage of wagtail-vector-index 0.10.0 (removed)"
    default_auto_field = "django.db.models.AutoField"
