"""The test settings as a site runs in production (issue 21): requests in a
transaction (``ATOMIC_REQUESTS``), a SQLite file as ``wagtail start`` writes
it (no options), the ledger's writer thread on, the garbage collector on.

    python -m pytest --ds=tests.settings_production -p no:playwright tests/production

Only tests/production runs with these settings, and only with them: its
tests are transactional, so that the package's own threads and connections
see what the tests commit, as they see a site's data.
"""

import tempfile
from pathlib import Path

from tests.settings import *  # noqa: F403

# Outside the repository: tests never write into it.
_FOLDER = Path(tempfile.gettempdir())

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _FOLDER / "wvi-production.sqlite3",
        "ATOMIC_REQUESTS": True,
        # A file, not the in-memory database Django tests use by default:
        # other connections and processes share it as a site's do.
        "TEST": {"NAME": str(_FOLDER / "wvi-test-production.sqlite3")},
    }
}

ROOT_URLCONF = "tests.production.urls"
