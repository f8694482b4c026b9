"""Settings for the commands that tests/test_concurrent_updates.py runs in
subprocesses: the database and the provider come from the environment.

- ``WVI_TEST_DATABASE``: a SQLite file, or a ``postgresql://`` URL (then
  vectors are stored with pgvector).
- ``WVI_TEST_PROVIDER``: the base URL of a ``tests.providers.ProviderServer``.
- ``WVI_TEST_DIMENSIONS``: the embedding dimensions (default 8).
"""

import os

from tests.postgres import settings_from_url
from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

_database = os.environ["WVI_TEST_DATABASE"]
if _database.startswith(("postgres://", "postgresql://")):
    DATABASES = {"default": settings_from_url(_database)}
    INSTALLED_APPS = [
        "wagtail_vector_index.contrib.pgvector",
        *INSTALLED_APPS,
        # Wagtail's search backend on PostgreSQL (Django 6: postgres.E005).
        "django.contrib.postgres",
    ]
    _STORAGE = {
        "STORAGE": "wagtail_vector_index.index.storage.pgvector.PgvectorStorage"
    }
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _database}}
    _STORAGE = {}

WAGTAIL_VECTOR_INDEX = {
    "CHAT_BACKENDS": {
        "default": {
            "CLASS": "wagtail_vector_index.ai_utils.backends.offline.EchoChatBackend",
            "CONFIG": {},
        }
    },
    "EMBEDDING_BACKENDS": {
        "default": {
            "CLASS": (
                "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMEmbeddingBackend"
            ),
            "CONFIG": {
                "MODEL_ID": "openai/test-embed",
                "TOKEN_LIMIT": 8191,
                "EMBEDDING_OUTPUT_DIMENSIONS": int(
                    os.environ.get("WVI_TEST_DIMENSIONS", "8")
                ),
                "DEFAULT_PARAMETERS": {
                    "api_base": os.environ["WVI_TEST_PROVIDER"] + "/v1",
                    "timeout": 30,
                },
            },
        }
    },
    **_STORAGE,
}
