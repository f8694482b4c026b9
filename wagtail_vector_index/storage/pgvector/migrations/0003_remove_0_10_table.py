"""Drop 0.10.0's pgvector table: its vectors cannot be reused (this version
splits content differently); ``manage.py update_vector_indexes`` rebuilds.

Runs before ``wagtail_vector_index.0002_replace_0_10_tables``, which drops
the ``Embedding`` table these rows point at.
"""

from django.db import migrations


class DeleteModelIfPresent(migrations.DeleteModel):
    """``DeleteModel`` that leaves a database without the table alone (say,
    one migrated with this app left out of ``INSTALLED_APPS``, where
    ``wagtail_vector_index.0002_replace_0_10_tables`` dropped the table)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.name)
        if model._meta.db_table in schema_editor.connection.introspection.table_names():
            super().database_forwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [("pgvector", "0002_initial")]
    run_before = [("wagtail_vector_index", "0002_replace_0_10_tables")]

    operations = [DeleteModelIfPresent(name="PgvectorEmbedding")]
