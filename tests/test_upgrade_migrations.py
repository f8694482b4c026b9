"""The migration bridge from wagtail-vector-index 0.10.0.

``wagtail_vector_index.0001_initial`` is 0.10.0's own first migration, so the
test database is taken back to it (0.10.0's ``Embedding`` table, as a site
running 0.10.0 has it), given 0.10.0 rows, and migrated forward as ``manage.py
migrate`` would after ``pip install -U``. Runs on SQLite and on PostgreSQL
(``--ds=tests.settings_postgres``), where dropping a table that another points
at needs ``CASCADE``.

SQLite changes a schema only outside a transaction, and a transactional test
(``django_db(transaction=True)``) would flush the database afterwards, taking
Wagtail's root page from the transactional tests that follow. So these tests
use the test database in autocommit through ``django_db_blocker`` and put back
by hand what they change: the schema, the migration records and their rows.
"""

from contextlib import contextmanager

import pytest
from django.apps import AppConfig, apps
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.test import override_settings

from tests.testapp.models import Book

APP = "wagtail_vector_index"
OLD = (APP, "0001_initial")  # 0.10.0's.
BRIDGE = (APP, "0002_replace_0_10_tables")
#: The migration our development databases applied before 0.10.0's history
#: was adopted (it created the lease and queue tables).
DEVELOPMENT_0002 = (APP, "0002_update_lease_and_queue")
OLD_PGVECTOR_APP = "wagtail_vector_index.storage.pgvector"
OLD_EMBEDDING_TABLE = "wagtail_vector_index_embedding"
OLD_PGVECTOR_TABLE = "pgvector_pgvectorembedding"
TABLES = {
    "wagtail_vector_index_aisettings",
    "wagtail_vector_index_embeddingchunk",
    "wagtail_vector_index_indexstate",
    "wagtail_vector_index_indexupdatelease",
    "wagtail_vector_index_pendingindexupdate",
}
OFFLINE = "wagtail_vector_index.ai_utils.backends.echo"


def migrate(*targets):
    """Migrate to ``targets``; the historical models there."""
    executor = MigrationExecutor(connection)
    executor.migrate(list(targets))
    executor.loader.build_graph()
    return executor.loader.project_state(list(targets)).apps


def tables():
    return set(connection.introspection.table_names())


def recorder():
    return MigrationRecorder(connection)


def execute(sql, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture(autouse=True)
def database(django_db_setup, django_db_blocker):
    """The test database, in autocommit, at ``BRIDGE``; whatever a test does,
    the tests that follow find the current schema and no rows of these tests."""
    from wagtail_vector_index.models import (
        EmbeddingChunk,
        IndexState,
        IndexUpdateLease,
        PendingIndexUpdate,
    )

    with django_db_blocker.unblock():
        # The tests start from the schema this module was written against.
        migrate(BRIDGE)
        try:
            yield
        finally:
            recorder().migration_qs.filter(app="pgvector").delete()
            recorder().record_unapplied(*DEVELOPMENT_0002)
            migrate(BRIDGE)
            migrate(latest())
            for model in (
                Book,
                EmbeddingChunk,
                IndexState,
                IndexUpdateLease,
                PendingIndexUpdate,
            ):
                model.objects.all().delete()


@contextmanager
def old_pgvector_app_installed():
    """0.10.0's INSTALLED_APPS entry, added to the running registry.

    Not with ``override_settings(INSTALLED_APPS=...)``: reloading the registry
    runs every app's ``ready()`` again, and Wagtail's documents app then mounts
    its API router twice (an error). The migration loader and ``is_installed``
    only need the app's config.
    """
    config = AppConfig.create(OLD_PGVECTOR_APP)
    config.apps = apps
    config.import_models()
    apps.app_configs[config.label] = config
    apps.clear_cache()
    try:
        yield config
    finally:
        del apps.app_configs[config.label]
        apps.clear_cache()


def old_embedding(old_apps, content="0.10.0's chunk"):
    """A row of 0.10.0's Embedding table, made with its historical model."""
    content_type = old_apps.get_model(
        "contenttypes", "ContentType"
    ).objects.get_or_create(app_label="testapp", model="book")[0]
    return old_apps.get_model(APP, "Embedding").objects.create(
        content_type=content_type,
        base_content_type=content_type,
        object_id="1",
        vector=[0.1, 0.2, 0.3],
        content=content,
    )


def latest():
    """The newest migration of the app (what ``manage.py migrate`` reaches)."""
    executor = MigrationExecutor(connection)
    return max(key for key in executor.loader.disk_migrations if key[0] == APP)


def assert_index_works():
    """An index built (offline hashing backend) and searched on the new tables,
    once migrated to the end as ``manage.py migrate`` does."""
    migrate(latest())
    Book.objects.create(title="Growing tomatoes", blurb="Sun, water and rich soil.")
    Book.objects.create(title="Watching stars", blurb="A telescope at night.")
    embedding = {"CLASS": f"{OFFLINE}.HashingEmbeddingBackend", "CONFIG": {}}
    with override_settings(
        WAGTAIL_VECTOR_INDEX={"EMBEDDING_BACKENDS": {"default": embedding}}
    ):
        report = Book.vector_index.update()
        found = Book.vector_index.search("telescope", limit=1)
    assert report.objects == 2
    assert [book.title for book in found] == ["Watching stars"]


def test_a_0_10_database_upgrades_with_migrate():
    old_apps = migrate(OLD)
    assert OLD_EMBEDDING_TABLE in tables()
    assert not TABLES & tables()
    old_embedding(old_apps)

    migrate(BRIDGE)

    assert OLD_EMBEDDING_TABLE not in tables()
    assert TABLES <= tables()
    assert_index_works()


def test_0_10_pgvector_app_keeps_its_history_and_loses_its_table():
    migrate(OLD)
    # 0.10.0's INSTALLED_APPS entry; its label and migration names are 0.10.0's.
    with old_pgvector_app_installed() as config:
        assert config.label == "pgvector"
        assert apps.is_installed(OLD_PGVECTOR_APP)
        old_apps = migrate(OLD, ("pgvector", "0002_initial"))
        assert OLD_PGVECTOR_TABLE in tables()
        old_apps.get_model("pgvector", "PgvectorEmbedding").objects.create(
            embedding=old_embedding(old_apps),
            vector=[0.1, 0.2, 0.3],
            embedding_output_dimensions=3,
            index_name="BookIndex",
        )

        migrate(BRIDGE)

        assert {OLD_PGVECTOR_TABLE, OLD_EMBEDDING_TABLE}.isdisjoint(tables())
        assert ("pgvector", "0003_remove_0_10_table") in recorder().applied_migrations()
    assert TABLES <= tables()
    assert_index_works()


def test_0_10_pgvector_table_left_behind_is_dropped():
    # The old app was taken out of INSTALLED_APPS before migrating: its table
    # (pointing at Embedding) is still there.
    old_apps = migrate(OLD)
    embedding = old_embedding(old_apps)
    execute(
        f"CREATE TABLE {OLD_PGVECTOR_TABLE} (id integer PRIMARY KEY, "
        f"embedding_id integer NOT NULL REFERENCES {OLD_EMBEDDING_TABLE} (id) "
        "DEFERRABLE INITIALLY DEFERRED, index_name text NOT NULL)"
    )
    execute(
        f"INSERT INTO {OLD_PGVECTOR_TABLE} VALUES (1, %s, 'BookIndex')",  # noqa: S608
        [embedding.pk],
    )

    migrate(BRIDGE)

    assert {OLD_PGVECTOR_TABLE, OLD_EMBEDDING_TABLE}.isdisjoint(tables())
    assert TABLES <= tables()


def test_a_table_of_that_name_from_another_app_is_left_alone():
    # Only 0.10.0's table (with its embedding_id column) is dropped.
    migrate(OLD)
    execute(f"CREATE TABLE {OLD_PGVECTOR_TABLE} (id integer PRIMARY KEY)")
    try:
        migrate(BRIDGE)
        assert OLD_PGVECTOR_TABLE in tables()
    finally:
        execute(f"DROP TABLE {OLD_PGVECTOR_TABLE}")


@pytest.mark.parametrize("with_lease_tables", [True, False])
def test_a_database_of_our_development_migrations_keeps_its_tables(
    with_lease_tables,
):
    from wagtail_vector_index.models import IndexState

    # What our test and demo databases recorded: our former 0001_initial
    # (same name as 0.10.0's, other tables) and maybe 0002_update_lease_and_queue,
    # and none of the migrations after it.
    at_bridge = migrate(BRIDGE)
    at_bridge.get_model(APP, "IndexState").objects.create(
        index_name="kept", model_id="m", dimensions=3
    )
    recorder().record_unapplied(*BRIDGE)
    if with_lease_tables:
        recorder().record_applied(*DEVELOPMENT_0002)
    else:
        execute("DROP TABLE wagtail_vector_index_indexupdatelease")
        execute("DROP TABLE wagtail_vector_index_pendingindexupdate")

    migrate(BRIDGE)

    assert TABLES <= tables()
    assert OLD_EMBEDDING_TABLE not in tables()
    assert list(IndexState.objects.values_list("index_name", flat=True)) == ["kept"]
    assert_index_works()


def test_a_development_table_with_other_columns_stops_the_migration():
    recorder().record_unapplied(*BRIDGE)
    execute("DROP TABLE wagtail_vector_index_pendingindexupdate")
    execute(
        "CREATE TABLE wagtail_vector_index_pendingindexupdate "
        "(id integer PRIMARY KEY, queued text)"
    )
    try:
        with pytest.raises(RuntimeError) as raised:
            migrate(BRIDGE)
    finally:
        execute("DROP TABLE wagtail_vector_index_pendingindexupdate")
    assert str(raised.value) == (
        'Table "wagtail_vector_index_pendingindexupdate" already exists with '
        "other columns than wagtail_vector_index.PendingIndexUpdate needs "
        "(missing: content_type_id, created_at, index_name, object_id; "
        "unexpected: queued). It was made by an unreleased development version "
        'of wagtail-vector-index. Drop the "wagtail_vector_index_*" tables and '
        "delete the rows of django_migrations whose app is "
        '"wagtail_vector_index", then run manage.py migrate again; manage.py '
        "update_vector_indexes rebuilds the indexes."
    )


def test_downgrade_back_to_0_10_tables():
    # Reversible: migrate wagtail_vector_index 0001_initial gives back the
    # table 0.10.0 expects (empty: its vectors were not kept).
    migrate(OLD)
    assert OLD_EMBEDDING_TABLE in tables()
    assert not TABLES & tables()
