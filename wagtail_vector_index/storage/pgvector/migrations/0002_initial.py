"""0.10.0's table of pgvector embeddings, as that release created it (the
``vector`` column through this package's own field, so that the pgvector
package need not be installed). ``0003_remove_0_10_table`` drops it."""

import django.db.models.deletion
from django.db import migrations, models

import wagtail_vector_index.contrib.pgvector.fields


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("wagtail_vector_index", "0001_initial"),
        ("pgvector", "0001_enable_pgvector_extension"),
    ]

    operations = [
        migrations.CreateModel(
            name="PgvectorEmbedding",
            fields=[
                (
                    "id",
                    models.AutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("vector", wagtail_vector_index.contrib.pgvector.fields.VectorField()),
                (
                    "embedding_output_dimensions",
                    models.PositiveIntegerField(db_index=True),
                ),
                ("index_name", models.TextField()),
                (
                    "embedding",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="wagtail_vector_index.embedding",
                    ),
                ),
            ],
            options={
                "verbose_name": "pgvector embedding",
                "indexes": [
                    models.Index(
                        fields=["index_name"], name="pgvector_pg_index_n_9af56b_idx"
                    )
                ],
            },
        ),
        migrations.AddConstraint(
            model_name="pgvectorembedding",
            constraint=models.UniqueConstraint(
                fields=("embedding", "index_name", "embedding_output_dimensions"),
                name="unique_pgvector_embedding_per_index_and_dimensions",
            ),
        ),
    ]
