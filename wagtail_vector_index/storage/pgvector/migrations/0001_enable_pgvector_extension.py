"""0.10.0's first pgvector migration: ``CREATE EXTENSION vector``.

Same name and effect as in 0.10.0 (whose database has applied it), without
importing the pgvector package: on other databases than PostgreSQL it does
nothing, as 0.10.0's did. Undoing it leaves the extension in place
(``wagtail_vector_index.contrib.pgvector`` uses it too).
"""

from django.db import migrations


def create_extension(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS vector")


class Migration(migrations.Migration):
    operations = [migrations.RunPython(create_extension, migrations.RunPython.noop)]
