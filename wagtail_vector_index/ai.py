"""The one way callers get a backend: by alias, from the project's settings.

Backends are built once per alias and reused (they hold no per-call state);
the cache is cleared when ``WAGTAIL_VECTOR_INDEX`` changes.
"""

from __future__ import annotations

import copy
import functools
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from wagtail_vector_index import conf
from wagtail_vector_index.ai_utils import backends
from wagtail_vector_index.exceptions import UnknownBackendAliasError
from wagtail_vector_index.parameters import ALL_ALIASES
from wagtail_vector_index.site_overrides import get_site_overrides

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
    backend = backends.get_backend(
        backend_dict=configured[alias], backend_id=alias, kind=kind
    )
    backend.fallback_source = functools.partial(_build, kind)
    return backend


def configured_aliases(kind: str) -> list[str]:
    """The aliases configured for ``kind`` (``"chat"`` or ``"embedding"``)."""
    configured = conf.get_backend_settings(kind)
    return [str(alias) for alias in configured] if isinstance(configured, dict) else []


def get_configured_backend(kind: str, alias: str) -> Any:
    """The backend of ``kind`` under ``alias``, or ``None`` if it cannot be
    built (the system checks explain why)."""
    try:
        return _build(kind, alias)
    except ImproperlyConfigured:
        return None


def clear_backend_cache() -> None:
    """Forget built backends (done whenever the setting changes)."""
    _build.cache_clear()


def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    # Backends built from the old settings must not outlive them. (conf,
    # below this module, forgets what it read through its own receiver.)
    if setting == conf.SETTING_NAME:
        clear_backend_cache()


setting_changed.connect(_on_setting_changed, dispatch_uid="wvi-ai-backends")


def _resolve_site(site: Site | None, request: HttpRequest | None) -> Site | None:
    if site is not None or request is None:
        return site
    from wagtail.models import Site

    # Wagtail's own lookup (hostname and port, then the default site); it
    # caches the result on the request.
    return Site.find_for_request(request)


def _site_overrides(site: Site, request: HttpRequest | None) -> dict[str, Any]:
    if request is None:
        return get_site_overrides(site.pk)
    # At most one read per request, whatever the number of calls.
    memo = request.__dict__.setdefault("_wagtail_vector_index_overrides", {})
    if site.pk not in memo:
        memo[site.pk] = get_site_overrides(site.pk)
    return memo[site.pk]


def _for_site(
    kind: str, alias: str, site: Site | None, request: HttpRequest | None
) -> Any:
    backend = _build(kind, alias)
    site = _resolve_site(site, request)
    user = _user(request)
    if site is None:
        return backend if user is None else backend.with_usage(user=user)
    overrides = _site_overrides(site, request)
    backend = _with_site(backend, overrides)
    # Fallbacks answer with the same site's overrides for their alias, as
    # read now: the resilience loop (on an event loop, for ``achat()``) asks
    # for them without touching the database.
    backend.fallback_source = lambda other: _with_site(_build(kind, other), overrides)
    # The site's budget applies to the calls, and the ledger records them
    # under the site (and the request's user).
    return backend.with_usage(site=site, user=user)


def _with_site(backend: Any, site_overrides: dict[str, Any]) -> Any:
    """``backend`` with a site's parameter overrides (a copy, if any)."""
    overrides = site_overrides[backend.kind]
    everywhere = overrides.get(ALL_ALIASES, {})
    this_alias = overrides.get(backend.alias, {})
    if everywhere or this_alias:
        return backend.with_site_parameters(everywhere, this_alias)
    return copy.copy(backend)


def _user(request: HttpRequest | None) -> Any:
    user = getattr(request, "user", None) if request is not None else None
    return user if user is not None and user.is_authenticated else None


def get_chat_backend(
    alias: str = "default",
    *,
    site: Site | None = None,
    request: HttpRequest | None = None,
) -> BaseChatBackend:
    """The chat backend configured under ``alias`` in ``CHAT_BACKENDS``.

    With ``site`` (or ``request``, from which Wagtail finds the site), the
    site's parameter overrides are merged over the settings'
    ``DEFAULT_PARAMETERS``: first those for all chat backends, then those for
    this alias. Keyword arguments at the call win over all of them;
    ``backend.effective_parameters()`` lists the values and their sources.

    The backend's calls are recorded in the usage ledger under the site (and
    the request's user) and count against the site's monthly budget (see
    docs/usage.md); :class:`~wagtail_vector_index.exceptions.AIBudgetExceededError`
    is raised before a call when that budget is used up.

    Raises :class:`~wagtail_vector_index.exceptions.UnknownBackendAliasError`
    for an alias that is not configured and
    :class:`~wagtail_vector_index.exceptions.InvalidAIBackendError` for
    settings that cannot be used.
    """
    return _for_site(conf.CHAT, alias, site, request)


def get_embedding_backend(
    alias: str = "default",
    *,
    site: Site | None = None,
    request: HttpRequest | None = None,
) -> BaseEmbeddingBackend:
    """The embedding backend configured under ``alias`` in ``EMBEDDING_BACKENDS``.

    See :func:`get_chat_backend` for ``site``, ``request`` and the errors raised.
    """
    return _for_site(conf.EMBEDDING, alias, site, request)
