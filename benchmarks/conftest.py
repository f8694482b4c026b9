"""Fixtures for benchmarks run through pytest (the browser ones): the same
loopback provider and Chromium launch settings as the tests."""

from tests.browser.conftest import browser_type_launch_args  # noqa: F401
from tests.conftest import _provider_server, provider  # noqa: F401
