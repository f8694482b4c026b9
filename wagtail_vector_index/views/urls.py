"""URLs of the admin pages, included under ``ai/`` in the Wagtail admin with
the ``wagtail_vector_index`` namespace (see ``wagtail_hooks``)."""

from django.urls import path

from wagtail_vector_index.views.backends import BackendCheckView, BackendsView
from wagtail_vector_index.views.base import AIPagePermissionMixin
from wagtail_vector_index.views.chat import (
    ChatSaveOverridesView,
    ChatStreamView,
    ChatTestView,
)
from wagtail_vector_index.views.embeddings import EmbeddingsTestView
from wagtail_vector_index.views.field_suggestions import FieldSuggestionsView
from wagtail_vector_index.views.image_descriptions import (
    ImageDescriptionStatusView,
    ImageDescriptionView,
)
from wagtail_vector_index.views.index_search import IndexSearchView
from wagtail_vector_index.views.indexes import IndexReportView
from wagtail_vector_index.views.related_pages import RelatedPagesView
from wagtail_vector_index.views.usage_report import UsageReportView

app_name = "wagtail_vector_index"


def with_permission(view_class: type) -> type:
    """``view_class`` behind the ``use_ai_test_pages`` permission (a no-op
    for views that check it already)."""
    if issubclass(view_class, AIPagePermissionMixin):
        return view_class
    return type(view_class.__name__, (AIPagePermissionMixin, view_class), {})


urlpatterns = [
    path("chat/", ChatTestView.as_view(), name="chat"),
    path("chat/stream/", ChatStreamView.as_view(), name="chat_stream"),
    path(
        "chat/save-overrides/",
        ChatSaveOverridesView.as_view(),
        name="chat_save_overrides",
    ),
    path("embeddings/", EmbeddingsTestView.as_view(), name="embeddings"),
    path(
        "embeddings/search-index/",
        IndexSearchView.as_view(),
        name="embeddings_index_search",
    ),
    # Editor features: behind use_ai_in_editor, checked by the views.
    path(
        "editor/field-suggestions/",
        FieldSuggestionsView.as_view(),
        name="field_suggestions",
    ),
    path("backends/", BackendsView.as_view(), name="backends"),
    path("backends/check/", BackendCheckView.as_view(), name="backends_check"),
    path("indexes/", with_permission(IndexReportView).as_view(), name="indexes"),
    # Behind its own permission (view_ai_usage_report), checked by the view.
    path("usage/", UsageReportView.as_view(), name="usage_report"),
    path(
        "usage/results/",
        UsageReportView.as_view(results_only=True),
        name="usage_report_results",
    ),
    # The image editor's "Describe with AI" (behind use_ai_in_editor).
    path(
        "editor/images/<int:image_id>/describe/",
        ImageDescriptionView.as_view(),
        name="image_description",
    ),
    path(
        "editor/images/<int:image_id>/describe/status/",
        ImageDescriptionStatusView.as_view(),
        name="image_description_status",
    ),
    # Editor features: related pages and "Already published?" (behind the
    # use_ai_in_editor permission, checked by the view).
    path(
        "editor/related-pages/",
        RelatedPagesView.as_view(),
        name="editor_related_pages",
    ),
]
