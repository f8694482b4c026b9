"""Start-up benchmark settings: the test project's, without ``tests.testapp``.

The test app's models use this checkout's package, so a project with the older
release installed (``run.py --with-old``) cannot load it. These settings are
``tests/settings.py`` read by file path (so the repository root need not be on
``sys.path``, where it would shadow the older package) minus that app; with
``WVI_WITHOUT_APP=1`` they are the same as the test settings without the app.
"""

import runpy
from pathlib import Path

_TEST_SETTINGS = Path(__file__).resolve().parent.parent / "tests" / "settings.py"

globals().update(
    {
        name: value
        for name, value in runpy.run_path(str(_TEST_SETTINGS)).items()
        if name.isupper()
    }
)
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "tests.testapp"]  # noqa: F821
