"""Admin test pages: try the chat and embedding backends from the Wagtail admin.

The views are in :mod:`.chat` and :mod:`.embeddings`, their URLs in
:mod:`.urls` (registered by ``wagtail_hooks`` under the
``wagtail_vector_index`` namespace). Importing this package must stay cheap:
LiteLLM is only imported when a page builds or calls a backend.
"""

#: The permission that opens the test pages (granted to groups in the admin).
PERMISSION = "wagtail_vector_index.use_ai_test_pages"
PERMISSION_CODENAME = "use_ai_test_pages"
