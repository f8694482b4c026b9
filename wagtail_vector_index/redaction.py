"""Keeping credentials out of everything the package says.

Providers sometimes quote the key they were sent (``Incorrect API key
provided: ...``), and LiteLLM's debug log prints requests. Whatever shape a
key has, it must not reach an exception message, an admin page, a command's
output or a log line. :func:`redact` replaces every credential the package
could have used: values of credential-like parameters passed to the call, the
provider keys in the environment (``OPENAI_API_KEY``, ``AZURE_API_KEY``, ...
whatever their shape), keys set on the ``litellm`` module, and anything that
looks like a key (``sk-...``, ``Bearer ...``, ``api_key=...``).

:func:`install_log_filters` adds :class:`RedactingFilter` to the loggers of
LiteLLM, the OpenAI SDK, httpx and this package.

This module sits at the bottom of the package: it imports nothing of it.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from typing import Any

HIDDEN = "[hidden]"

#: Names of environment variables and parameters that hold credentials.
_CREDENTIAL_NAME = re.compile(
    r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.IGNORECASE
)
#: Names of header mappings in call parameters: all their values are hidden.
_HEADER_PARAMETERS = ("extra_headers", "headers", "default_headers")
#: Shorter values are too likely to be ordinary words to replace everywhere.
MIN_SECRET_LENGTH = 6

#: Things that look like credentials whatever they belong to.
_SECRET_PATTERN = re.compile(
    r"(sk-[A-Za-z0-9_\-*]{4,}"
    r"|(?i:bearer)\s+[^\s'\",}]+"
    r"|(?i:api[_-]?key)[\"'=:\s]+[^\s'\",}]+"
    r"|(?i:[?&](?:key|api_key|token|access_token|sig)=)[^&\s'\"]+)"
)

#: Loggers whose records are redacted (LiteLLM logs requests when debugging;
#: the SDK and httpx log URLs, which may carry keys in their query).
LOGGERS = (
    "LiteLLM",
    "LiteLLM Router",
    "LiteLLM Proxy",
    "openai",
    "httpx",
    "httpcore",
    "wagtail_vector_index",
)


#: Credentials passed to calls so far in this process (see :func:`remember`):
#: log records of a call do not say which parameters it had.
_remembered: set[str] = set()


def _values(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _values(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _values(item)


def _credentials(parameters: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for name, value in parameters.items():
        if name in _HEADER_PARAMETERS or _CREDENTIAL_NAME.search(name):
            found.update(_values(value))
    return found


def has_credentials(parameters: Mapping[str, Any]) -> bool:
    """Whether ``parameters`` hold a credential (an ``api_key``, a provider's
    own key parameter, an ``Authorization`` header...); values unread."""
    for name, value in parameters.items():
        if name in _HEADER_PARAMETERS and isinstance(value, Mapping):
            if has_credentials(value):
                return True
        elif _CREDENTIAL_NAME.search(name) and any(
            item.strip() for item in _values(value)
        ):
            return True
    return False


def remember(parameters: Mapping[str, Any]) -> None:
    """Hide the credentials in a call's ``parameters`` from now on, in log
    records too (the backends call it before every provider call)."""
    found = _credentials(parameters)
    if not found <= _remembered:
        _remembered.update(found)


def known_secrets(parameters: Mapping[str, Any] | None = None) -> list[str]:
    """Every credential a call with ``parameters`` could have used, longest
    first (so that a key containing another is hidden whole)."""
    secrets = _credentials(parameters or {}) | _remembered
    for name, value in os.environ.items():
        if _CREDENTIAL_NAME.search(name):
            secrets.add(value)
    litellm = sys.modules.get("litellm")
    if litellm is not None:
        # Keys set in code (litellm.api_key = ..., litellm.openai_key = ...).
        for name in dir(litellm):
            if name == "api_key" or name.endswith("_key"):
                secrets.update(_values(getattr(litellm, name, None)))
    return sorted(
        (s.strip() for s in secrets if len(s.strip()) >= MIN_SECRET_LENGTH),
        key=len,
        reverse=True,
    )


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """``text`` with every credential replaced by ``[hidden]``.

    ``secrets`` defaults to :func:`known_secrets` without call parameters.
    """
    if not text:
        return text
    for secret in known_secrets() if secrets is None else secrets:
        if secret and secret in text:
            text = text.replace(secret, HIDDEN)
    return _SECRET_PATTERN.sub(HIDDEN, text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and its traceback) without credentials.

    The record keeps its level and logger; its arguments are merged into the
    message first, since any of them may hold a key.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = known_secrets()
        try:
            message = record.getMessage()
        except Exception:  # A malformed record: leave it to the handler.
            return True
        record.msg = redact(message, secrets)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatters use exc_text when it is set instead of formatting the
            # exception (whose chained causes may quote a key) themselves.
            formatted = "".join(traceback.format_exception(*record.exc_info))
            record.exc_text = redact(formatted.rstrip("\n"), secrets)
            record.exc_info = None
        return True


_FILTER = RedactingFilter()


def _add_filter(logger: logging.Logger) -> logging.Logger:
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)``, its records redacted (the package's own
    modules log through it: a logger's filters do not apply to its children)."""
    return _add_filter(logging.getLogger(name))


#: How many loggers existed when :func:`install_log_filters` last looked.
_seen_loggers = -1


def install_log_filters() -> None:
    """Redact the records of :data:`LOGGERS` and of every existing logger
    below them (call it after importing LiteLLM; idempotent).

    Called before every provider call, so it looks at the loggers again only
    when some were created since it last did (loggers are never removed):
    scanning every logger of a process with LiteLLM loaded on each call cost
    more than the calls themselves.
    """
    global _seen_loggers
    existing = len(logging.root.manager.loggerDict)
    if existing == _seen_loggers:
        return
    _seen_loggers = existing
    names = set(LOGGERS)
    names.update(
        name
        for name in list(logging.root.manager.loggerDict)
        if any(name.startswith(f"{prefix}.") for prefix in LOGGERS)
    )
    for name in names:
        _add_filter(logging.getLogger(name))
