import django.db.models.deletion
from django.db import migrations, models
from pgvector.django import VectorExtension

import wagtail_vector_index.contrib.pgvector.fields


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        # CREATE EXTENSION IF NOT EXISTS vector: needs a role allowed to create
        # extensions (pgvector is not a trusted extension), or a database where
        # an administrator already created it.
        VectorExtension(),
        migrations.CreateModel(
            name="PgvectorChunk",
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
                (
                    "embedding",
                    wagtail_vector_index.contrib.pgvector.fields.VectorField(),
                ),
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
                "verbose_name": "embedding chunk (pgvector)",
                "db_table": "wagtail_vector_index_pgvector_chunk",
                "indexes": [
                    models.Index(
                        fields=["index_name", "build"], name="wvi_pgvector_build"
                    ),
                    models.Index(
                        fields=["index_name", "build", "content_type", "object_id"],
                        name="wvi_pgvector_object",
                    ),
                ],
            },
        ),
    ]
