"""Helpers for page models: the backends, with the page's own site.

A page calls the AI with the parameter overrides of the site it belongs to
(Settings › AI settings), not those of whichever site the request came from
or of the first site in the database.
"""

from __future__ import annotations

from typing import Any

from wagtail_vector_index import ai, usage


class AIBackendsMixin:
    """Site-aware backends for a page: ``self.get_chat_backend(alias)``.

    The page's own site decides which per-site parameter overrides apply, so
    a page on site B is answered with site B's temperature::

        summary = self.get_chat_backend().chat(messages=[...]).text

    Calls are recorded in the usage ledger as "page helper" under the page's
    site, and count against that site's budget.
    """

    def _site_for_backends(self) -> Any:
        get_site = getattr(self, "get_site", None)
        return get_site() if get_site is not None else None

    def get_chat_backend(self, alias: str = "default") -> Any:
        backend = ai.get_chat_backend(alias, site=self._site_for_backends())
        return backend.with_usage(feature=usage.PAGE_HELPER)

    def get_embedding_backend(self, alias: str = "default") -> Any:
        backend = ai.get_embedding_backend(alias, site=self._site_for_backends())
        return backend.with_usage(feature=usage.PAGE_HELPER)
