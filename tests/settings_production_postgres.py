"""tests/settings_production.py on PostgreSQL (with pgvector):

    python -m pytest --ds=tests.settings_production_postgres -p no:playwright \\
        tests/production
"""

from tests.settings_postgres import *  # noqa: F403
from tests.settings_postgres import DATABASES

DATABASES = {"default": {**DATABASES["default"], "ATOMIC_REQUESTS": True}}

ROOT_URLCONF = "tests.production.urls"
