"""The one way callers get a backend: by alias, from the project's settings.

Backends are built once per alias and reused (they hold no per-call state);
the cache is cleared when ``WAGTAIL_VECTOR_INDEX`` changes.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from wagtail_vector_index import conf
from wagtail_vector_index.ai_utils import backends
from wagtail_vector_index.exceptions import UnknownBackendAliasError

if TYPE_CHECKING:
    from django.http import HttpRequest
    from wagtail.models import Site

    from wagtail_vector_index.ai_utils.backends.base import (
        BaseChatBackend,
        BaseEmbeddingBackend,
    )


@functools.cache
def _build(kind: str, alias: str) -> Any:
    configured = conf.get_backend_settings(kind)
    if not isinstance(configured, dict) or alias not in configured:
        known = sorted(configured) if isinstance(configured, dict) else []
        raise UnknownBackendAliasError(alias, kind, known)
    return backends.get_backend(
        backend_dict=configured[alias], backend_id=alias, kind=kind
    )


def clear_backend_cache() -> None:
    """Forget built backends (called when settings change)."""
    _build.cache_clear()


def get_chat_backend(
    alias: str = "default",
    *,
    site: Site | None = None,
    request: HttpRequest | None = None,
) -> BaseChatBackend:
    """The chat backend configured under ``alias`` in ``CHAT_BACKENDS``.

    ``site`` or ``request`` select the Wagtail site whose parameter overrides
    apply (per-site overrides are merged once site settings exist; until then
    the settings' ``DEFAULT_PARAMETERS`` apply everywhere).

    Raises :class:`~wagtail_vector_index.exceptions.UnknownBackendAliasError`
    for an alias that is not configured and
    :class:`~wagtail_vector_index.exceptions.InvalidAIBackendError` for
    settings that cannot be used.
    """
    return _build(conf.CHAT, alias)


def get_embedding_backend(
    alias: str = "default",
    *,
    site: Site | None = None,
    request: HttpRequest | None = None,
) -> BaseEmbeddingBackend:
    """The embedding backend configured under ``alias`` in ``EMBEDDING_BACKENDS``.

    See :func:`get_chat_backend` for ``site``, ``request`` and the errors raised.
    """
    return _build(conf.EMBEDDING, alias)
