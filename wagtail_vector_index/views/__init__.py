"""Admin pages: the chat and embedding test pages, the vector index and AI
usage reports, the usage dashboard panel.

A module per page (:mod:`.chat`, :mod:`.embeddings`, :mod:`.usage_report`,
...), their URLs in :mod:`.urls` (registered by ``wagtail_hooks`` under the
``wagtail_vector_index`` namespace). Importing this package must stay cheap:
LiteLLM is only imported when a page builds or calls a backend.
"""

#: The permission that opens the test pages (granted to groups in the admin).
PERMISSION = "wagtail_vector_index.use_ai_test_pages"
PERMISSION_CODENAME = "use_ai_test_pages"

#: The permission that opens Reports › AI usage and the usage dashboard panel.
USAGE_REPORT_PERMISSION = "wagtail_vector_index.view_ai_usage_report"
USAGE_REPORT_PERMISSION_CODENAME = "view_ai_usage_report"

#: The permission that opens the editor features (``wagtail_vector_index.panels``:
#: field suggestions, image descriptions, related pages).
EDITOR_PERMISSION = "wagtail_vector_index.use_ai_in_editor"
EDITOR_PERMISSION_CODENAME = "use_ai_in_editor"


def may_use_ai_in_editor(request: object) -> bool:
    """Whether the editor features are shown for ``request`` (a panel bound
    without a request shows none)."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.has_perm(EDITOR_PERMISSION))


#: The script the editor features' Stimulus controllers share (posting to an
#: endpoint, the word-level diff, messages): loaded before each controller.
EDITOR_COMMON_JS = "wagtail_vector_index/js/editor-common.js"
