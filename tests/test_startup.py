"""Loading the app must not import LiteLLM (about two seconds per process) nor
NumPy (only vector index calls need it)."""

import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent

CODE = """
import sys
import django
django.setup()
import wagtail_vector_index.ai, wagtail_vector_index.checks
import wagtail_vector_index.ai_utils.backends.litellm
from django.apps import apps
assert apps.is_installed("wagtail_vector_index")
from django.core import checks
import tests.testapp.models  # Models using VectorIndexedMixin.
print("litellm" in sys.modules, "numpy" in sys.modules)
"""


def test_setup_and_imports_do_not_import_litellm_or_numpy():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run(
        [sys.executable, "-c", CODE],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False False", result.stderr
