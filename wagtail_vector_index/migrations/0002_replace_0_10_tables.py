"""Replace wagtail-vector-index 0.10.0's tables with this version's.

0.10.0 stored one ``Embedding`` row per chunk (vectors as JSON, split with its
own text splitter) and, with its pgvector app, a copy of each vector in
``pgvector_pgvectorembedding``. Those vectors cannot be reused (this version
splits and stores differently), so both tables are dropped and
``manage.py update_vector_indexes`` builds the indexes again.

Three kinds of database reach this migration:

- a new one: 0001_initial just created 0.10.0's empty table;
- one migrated by 0.10.0 (its ``0001_initial`` is this app's 0001_initial);
- one migrated by a development version of this package, whose first two
  migrations (``0001_initial`` and ``0002_update_lease_and_queue``) created
  these tables before 0.10.0's history was adopted: tables that already exist
  with the expected columns are kept (with their rows), missing ones are
  created, and a table with other columns stops the migration with a message.
"""

import django.db.models.deletion
from django.db import migrations, models

import wagtail_vector_index.models

#: 0.10.0's pgvector app (label "pgvector"): its rows point at Embedding.
OLD_PGVECTOR_TABLE = "pgvector_pgvectorembedding"


def _tables(schema_editor):
    return set(schema_editor.connection.introspection.table_names())


def _columns(schema_editor, table):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(cursor, table)
    return {column.name for column in description}


def _drop_table(schema_editor, table):
    # DROP TABLE ... CASCADE on PostgreSQL: constraints pointing at it go too.
    schema_editor.execute(
        schema_editor.sql_delete_table % {"table": schema_editor.quote_name(table)}
    )


def drop_0_10_pgvector_table(apps, schema_editor):
    """0.10.0's pgvector table, when its app was removed from INSTALLED_APPS
    before migrating (installed, the app's own migration 0003 dropped it)."""
    embedding_table = apps.get_model("wagtail_vector_index", "Embedding")._meta.db_table
    tables = _tables(schema_editor)
    if (
        embedding_table in tables
        and OLD_PGVECTOR_TABLE in tables
        and "embedding_id" in _columns(schema_editor, OLD_PGVECTOR_TABLE)
    ):
        _drop_table(schema_editor, OLD_PGVECTOR_TABLE)


class DeleteModelIfPresent(migrations.DeleteModel):
    """``DeleteModel`` that leaves a database without the table alone."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.name)
        if model._meta.db_table in _tables(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.name)
        if model._meta.db_table not in _tables(schema_editor):
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class CreateModelIfMissing(migrations.CreateModel):
    """``CreateModel`` that keeps a table a development version created, if its
    columns are the model's."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.name)
        table = model._meta.db_table
        if table not in _tables(schema_editor):
            super().database_forwards(app_label, schema_editor, from_state, to_state)
            return
        expected = {field.column for field in model._meta.local_concrete_fields}
        found = _columns(schema_editor, table)
        if found != expected:
            raise RuntimeError(
                f'Table "{table}" already exists with other columns than '
                f"{model._meta.label} needs (missing: "
                f"{', '.join(sorted(expected - found)) or 'none'}; unexpected: "
                f"{', '.join(sorted(found - expected)) or 'none'}). It was made by "
                "an unreleased development version of wagtail-vector-index. Drop "
                'the "wagtail_vector_index_*" tables and delete the rows of '
                "django_migrations whose app is \"wagtail_vector_index\", then run "
                "manage.py migrate again; manage.py update_vector_indexes rebuilds "
                "the indexes."
            )


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("wagtail_vector_index", "0001_initial"),
        ("wagtailcore", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(
            drop_0_10_pgvector_table, migrations.RunPython.noop, elidable=True
        ),
        DeleteModelIfPresent(name="Embedding"),
        CreateModelIfMissing(
            name="IndexState",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("index_name", models.CharField(max_length=255, unique=True)),
                ("model_id", models.CharField(max_length=255)),
                ("dimensions", models.PositiveIntegerField()),
                ("active_build", models.PositiveIntegerField(default=0)),
                (
                    "revision",
                    models.CharField(
                        default=wagtail_vector_index.models.new_revision,
                        max_length=32,
                    ),
                ),
                ("chunk_count", models.PositiveIntegerField(default=0)),
                ("object_count", models.PositiveIntegerField(default=0)),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name": "vector index state",
            },
        ),
        CreateModelIfMissing(
            name="AISettings",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("chat_overrides", models.JSONField(blank=True, default=dict)),
                ("embedding_overrides", models.JSONField(blank=True, default=dict)),
                (
                    "site",
                    models.OneToOneField(
                        editable=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        to="wagtailcore.site",
                    ),
                ),
            ],
            options={
                "verbose_name": "AI settings",
                "verbose_name_plural": "AI settings",
                "permissions": [("use_ai_test_pages", "Can use the AI test pages")],
            },
        ),
        CreateModelIfMissing(
            name="EmbeddingChunk",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("index_name", models.CharField(max_length=255)),
                ("build", models.PositiveIntegerField()),
                ("object_id", models.CharField(max_length=255)),
                ("position", models.PositiveIntegerField()),
                ("text", models.TextField()),
                ("content_hash", models.CharField(max_length=64)),
                ("vector", models.BinaryField()),
                (
                    "content_type",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="contenttypes.contenttype",
                    ),
                ),
            ],
            options={
                "verbose_name": "embedding chunk",
                "indexes": [
                    models.Index(
                        fields=["index_name", "build"], name="wvi_chunk_build"
                    ),
                    models.Index(
                        fields=["index_name", "build", "content_type", "object_id"],
                        name="wvi_chunk_object",
                    ),
                ],
            },
        ),
        CreateModelIfMissing(
            name="IndexUpdateLease",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("index_name", models.CharField(max_length=255, unique=True)),
                ("owner", models.CharField(blank=True, max_length=32)),
                ("holder", models.CharField(blank=True, max_length=255)),
                ("acquired_at", models.DateTimeField(blank=True, null=True)),
                ("expires_at", models.DateTimeField(blank=True, null=True)),
                ("last_build", models.PositiveIntegerField(default=0)),
            ],
            options={
                "verbose_name": "vector index update lease",
            },
        ),
        CreateModelIfMissing(
            name="PendingIndexUpdate",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("index_name", models.CharField(max_length=255)),
                ("object_id", models.CharField(max_length=255)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "content_type",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="contenttypes.contenttype",
                    ),
                ),
            ],
            options={
                "verbose_name": "pending vector index update",
                "indexes": [
                    models.Index(fields=["index_name", "id"], name="wvi_pending")
                ],
            },
        ),
    ]
