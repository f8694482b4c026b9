"""The test settings on PostgreSQL with pgvector, storing vectors with
``PgvectorStorage``.

    python -m pytest --ds=tests.settings_postgres -p no:playwright \\
        tests/test_vector_index.py tests/test_index_signals.py tests/test_pgvector.py

Starts a throwaway PostgreSQL 16 + pgvector (the binaries of the ``pgserver``
package) for this process, or uses ``WVI_POSTGRES_URL`` when set: see
tests/postgres.py.
"""

from tests.postgres import database_settings
from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [
    "wagtail_vector_index.contrib.pgvector",
    *INSTALLED_APPS,
    # Wagtail's search backend on PostgreSQL uses GIN indexes, which Django 6
    # checks for (postgres.E005).
    "django.contrib.postgres",
]

DATABASES = {"default": database_settings()}

#: Read by tests/test_vector_index.py: the storage the index tests run against.
#: The pgvector storage's first dotted path, kept working on purpose (checks
#: and docs name ``wagtail_vector_index.index.storage.pgvector.PgvectorStorage``).
WVI_TEST_STORAGE = "wagtail_vector_index.index.pgvector.PgvectorStorage"

# What a site using pgvector sets (the index tests override the whole setting
# with their offline backends and this storage).
WAGTAIL_VECTOR_INDEX = {"STORAGE": WVI_TEST_STORAGE}
