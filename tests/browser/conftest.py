"""Browser tests: Playwright driving Debian's Chromium against live_server.

They run in their own pytest process (``pytest -m browser``): Playwright's
sync API and pytest-asyncio do not share a process well. Every module here
sets ``pytestmark = pytest.mark.browser``.

Screenshots: the tests take the pictures of the docs, but a run writes them
into a temporary folder, so it never changes the tracked ``docs/images``.
To refresh the docs' pictures, ask for it::

    WVI_SCREENSHOTS=docs/images python -m pytest -m browser tests/browser

(a relative path is taken from the repository's root).
"""

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.utils import PASSWORD


@pytest.fixture(autouse=True, scope="session")
def _async_unsafe_allowed():
    """Playwright's sync API runs an event loop in the test thread; the
    Django ORM calls made by tests and fixtures are still synchronous. Set
    for the browser tests only (a fixture of this folder, not at import:
    every pytest run imports this file, and the guard must stay on for the
    others, which check that no database query runs on an event loop)."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


CHROMIUM = os.environ.get("WVI_CHROMIUM") or shutil.which("chromium") or ""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not CHROMIUM:
        message = "Chromium is not installed: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the browser tests, not skip them.
        pytest.skip(message)
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
    }


REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory):
    """The folder screenshots go to: ``WVI_SCREENSHOTS`` when set (such as
    ``docs/images``), else a temporary one."""
    asked = os.environ.get("WVI_SCREENSHOTS")
    if not asked:
        return tmp_path_factory.mktemp("screenshots")
    folder = REPOSITORY / asked  # An absolute path stays as it is.
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def log_in(page, live_server):
    """``log_in(username, password=PASSWORD)``: sign in to the admin in
    ``page`` through the login form, and wait for the dashboard."""

    def log_in(username, password=PASSWORD):
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/admin/$"))

    return log_in
