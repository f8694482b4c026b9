"""What every editor-feature endpoint shares (``wagtail_vector_index.panels``:
field suggestions, image descriptions, related pages).

Each endpoint is a POST-only JSON view (CSRF as every admin POST) behind the
``use_ai_in_editor`` permission and the per-user rate limit. It answers
``{"ok": true, ...}`` or ``{"ok": false, "message": "..."}`` where the message
is safe to show in place: provider failures, exhausted budgets and
misconfigured aliases as their own (translated) words, anything unexpected
as a generic sentence with the details in the server's logs. Nothing an
endpoint answers is HTML: the browser inserts it as text.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View

from wagtail_vector_index.exceptions import (
    AIBudgetExceededError,
    AIProviderError,
    InvalidAIBackendError,
    VectorStorageError,
)
from wagtail_vector_index.redaction import get_logger
from wagtail_vector_index.views import EDITOR_PERMISSION, ratelimit

logger = get_logger(__name__)

#: Errors whose message is written for an editor.
SAFE_ERRORS = (
    AIProviderError,
    InvalidAIBackendError,
    AIBudgetExceededError,
    VectorStorageError,
)
UNEXPECTED_ERROR = _(
    "Something unexpected went wrong while asking the AI. "
    "The details are in the server's logs."
)
FORBIDDEN = _("You do not have permission to use AI suggestions in the editor.")


class EditorRefusal(Exception):
    """Raised by :meth:`EditorEndpoint.answer` to refuse a request with a
    message for the editor (bad input, an object they may not edit...)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def posted_int(value: Any) -> int | None:
    """A posted value (``request.POST.get(...)``) as an integer, else
    ``None``."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def bind_unsaved(
    request: HttpRequest, form_class: Any, instance: Any, **kwargs: Any
) -> Any:
    """The edit form ``form_class`` of ``instance`` bound to what was posted
    and cleaned, as the editor's own view does: its valid fields are set on
    ``instance`` (Django's ``construct_instance``), the others keep their
    stored value. Nothing is saved. ``kwargs``: more form arguments (a page's
    ``parent_page``)."""
    form = form_class(
        request.POST,
        request.FILES,
        instance=instance,
        for_user=request.user,
        **kwargs,
    )
    form.full_clean()
    return form


def refusal(message: str, status: int) -> JsonResponse:
    response = JsonResponse({"ok": False, "message": str(message)}, status=status)
    response["Cache-Control"] = "no-store"
    return response


class EditorEndpoint(View):
    """A POST-only JSON endpoint of an editor feature.

    Subclasses implement :meth:`answer`, which returns the JSON payload (a
    dict) and may raise :class:`EditorRefusal` or any of :data:`SAFE_ERRORS`.
    An endpoint that calls no provider sets ``calls_provider = False`` and
    is not counted against the rate limit.
    """

    http_method_names = ["post"]
    #: Whether a request is counted against the per-user rate limit.
    calls_provider = True

    def dispatch(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        if not request.user.has_perm(EDITOR_PERMISSION):
            return refusal(FORBIDDEN, status=403)
        return super().dispatch(request, *args, **kwargs)

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            self.validate(request, *args, **kwargs)
            if self.calls_provider and not ratelimit.take(request.user):
                return refusal(ratelimit.message(), status=429)
            payload = self.answer(request, *args, **kwargs)
        except EditorRefusal as error:
            return refusal(str(error), status=error.status)
        except SAFE_ERRORS as error:
            # 200: the request was understood; the message says what the
            # provider, the budget or the configuration refused.
            return refusal(str(error), status=200)
        except Exception:
            logger.exception("Editor feature %s failed", type(self).__name__)
            return refusal(gettext(str(UNEXPECTED_ERROR)), status=200)
        response = JsonResponse({"ok": True, **payload})
        response["Cache-Control"] = "no-store"
        return response

    def validate(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        """Check the request before the rate limit counts it (raise
        :class:`EditorRefusal`); by default nothing."""

    def answer(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise NotImplementedError
