"""Admin report: every vector index with its size, model and last update."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from wagtail.admin.views.generic.base import WagtailAdminTemplateMixin


@dataclass
class IndexRow:
    name: str
    objects: int | None
    chunks: int | None
    model_id: str
    dimensions: int | None
    updated_at: Any
    storage: str
    problem: str = ""


def index_rows() -> list[IndexRow]:
    """One row per registered index; problems are described, never raised."""
    from wagtail_vector_index.index.registry import get_indexes

    rows = []
    for name, index in sorted(get_indexes().items()):
        storage = index.storage
        state = storage.state()
        row = IndexRow(
            name=name,
            objects=state.object_count if state else None,
            chunks=state.chunk_count if state else None,
            model_id=state.model_id if state else "",
            dimensions=state.dimensions if state else None,
            updated_at=state.updated_at if state else None,
            storage=type(storage).__name__,
        )
        if state is None:
            row.problem = gettext("Not built yet: run manage.py update_vector_indexes.")
        else:
            try:
                backend = index.embedding_backend
            except Exception as error:  # A misconfigured backend: say so.
                row.problem = str(error)
            else:
                if (
                    backend.config.model_id != state.model_id
                    or backend.embedding_output_dimensions != state.dimensions
                ):
                    row.problem = gettext(
                        "Built with %(built_model)s (%(built_dimensions)s "
                        "dimensions), but the backend is now %(model)s "
                        "(%(dimensions)s): rebuild it."
                    ) % {
                        "built_model": state.model_id,
                        "built_dimensions": state.dimensions,
                        "model": backend.config.model_id,
                        "dimensions": backend.embedding_output_dimensions,
                    }
        rows.append(row)
    return rows


def storage_status() -> Any:
    """Whether a storage outside the application database (Qdrant) answers,
    as a ``StorageCheck``; ``None`` for the database storages, whose state
    the report reads anyway."""
    from django.core.exceptions import ImproperlyConfigured

    from wagtail_vector_index.index.storage import StorageCheck, get_storage

    try:
        storage = get_storage("")
    except ImproperlyConfigured as error:
        return StorageCheck(ok=False, description="", error=str(error))
    check = getattr(storage, "check_connection", None)
    return check() if callable(check) else None


class IndexReportView(WagtailAdminTemplateMixin, TemplateView):
    template_name = "wagtail_vector_index/admin/index_report.html"
    page_title = _("Vector indexes")
    header_icon = "table"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(
            rows=index_rows(), storage_status=storage_status(), **kwargs
        )
