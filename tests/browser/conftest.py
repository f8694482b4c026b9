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
import threading
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


class _Requests:
    """The paths the live server has answered, and those it is answering."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.open = 0
        self.answered: list[str] = []

    def answer(self, path, respond):
        with self.condition:
            self.open += 1
        try:
            return respond()
        finally:
            with self.condition:
                self.open -= 1
                self.answered.append(path)
                self.condition.notify_all()

    def wait_for(self, prefix, after, timeout=15.0) -> None:
        """Until a path starting with ``prefix`` is answered (beyond the
        first ``after`` answers) and none is being answered."""
        with self.condition:
            self.condition.wait_for(
                lambda: (
                    not self.open
                    and any(p.startswith(prefix) for p in self.answered[after:])
                ),
                timeout=timeout,
            )


@pytest.fixture(scope="session")
def _live_requests():
    """Counts the requests the live server is answering."""
    from django.core.handlers.wsgi import WSGIHandler

    requests = _Requests()
    original = WSGIHandler.__call__

    def counted(self, environ, start_response):
        return requests.answer(
            environ.get("PATH_INFO", ""),
            lambda: original(self, environ, start_response),
        )

    WSGIHandler.__call__ = counted
    yield requests
    WSGIHandler.__call__ = original


@pytest.fixture(autouse=True)
def _leave_the_page_before_the_flush(request, _live_requests):
    """After a test, leave the admin page and wait for what leaving sends.

    Leaving an edit view makes Wagtail release its editing session (a beacon
    to ``/admin/editing-sessions/release/``). Answered while the database was
    flushed after the test, it broke the flush (a foreign key to a deleted
    content type) and every browser test after it."""
    # Asked for here, the page is closed after this fixture's end, and the
    # database (set up before) is flushed after that.
    page = request.getfixturevalue("page") if "page" in request.fixturenames else None
    yield
    if page is None or page.is_closed():
        return
    in_session = page.locator("[data-controller~='w-session']").count()
    answered = len(_live_requests.answered)
    page.goto("about:blank")
    if in_session:
        _live_requests.wait_for("/admin/editing-sessions/release/", answered)
