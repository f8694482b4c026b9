"""The image editor's "Describe with AI" button: its endpoints and the script
that adds it.

Wagtail's image edit view is left as it is (no template override, no
``WAGTAILIMAGES_IMAGE_FORM_BASE``): the ``insert_editor_js`` hook loads a
Stimulus controller that, on the image edit page only, asks
:class:`ImageDescriptionStatusView` whether this user may describe this
image and, if so, puts the button beside the description field. Clicking it
POSTs to :class:`ImageDescriptionView` (an
:class:`~wagtail_vector_index.views.editor.EditorEndpoint`: permission, CSRF,
rate limit, safe messages); the editor sees the suggestion beside the
current description and only "Use this" fills the field.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponseBase, JsonResponse
from django.urls import reverse
from django.utils.html import format_html, json_script
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View

from wagtail_vector_index import image_descriptions
from wagtail_vector_index.exceptions import InvalidAIBackendError
from wagtail_vector_index.views import EDITOR_COMMON_JS, EDITOR_PERMISSION
from wagtail_vector_index.views.editor import EditorEndpoint, EditorRefusal

NOT_FOUND = _("This image does not exist (any more).")
CANNOT_CHANGE = _("You do not have permission to change this image.")
NO_DESCRIPTION_FIELD = _("This image model has no description field.")
#: A placeholder image id in the URLs handed to the script.
ID_PLACEHOLDER = 987654321


def _permission_policy(model: Any) -> Any:
    """Wagtail's permission policy for images (the image edit view's)."""
    try:  # Wagtail 8 and later.
        from wagtail.permissions import policy_registry
    except ImportError:  # Wagtail 7.
        from wagtail.images.permissions import permission_policy

        return permission_policy
    return policy_registry.get_by_type(model)


def _image(request: HttpRequest, image_id: int) -> Any:
    """The image, if ``request.user`` may change it (else a refusal)."""
    from wagtail.images import get_image_model

    model = get_image_model()
    image = model.objects.filter(pk=image_id).first()
    if image is None:
        raise EditorRefusal(str(NOT_FOUND), status=404)
    if not _permission_policy(model).user_has_permission_for_instance(
        request.user, "change", image
    ):
        raise EditorRefusal(str(CANNOT_CHANGE), status=403)
    if not image_descriptions.has_description_field(model):
        raise EditorRefusal(str(NO_DESCRIPTION_FIELD), status=400)
    return image


class ImageDescriptionView(EditorEndpoint):
    """POST: a suggested description of the image ``image_id``.

    Answers ``{"ok": true, "description": ..., "current": ..., "offline":
    bool, "alias": ..., "model": ...}``; the optional ``title`` field is the
    editor's unsaved title, used in the prompt.
    """

    def validate(self, request: HttpRequest, image_id: int) -> None:
        self.image = _image(request, image_id)
        # Refused before the rate limit counts it and before any request.
        image_descriptions.get_backend(request=request)

    def answer(self, request: HttpRequest, image_id: int) -> dict[str, Any]:
        title = request.POST.get("title", "").strip()[:255] or None
        try:
            description = image_descriptions.describe_image(
                self.image, request=request, user=request.user, title=title
            )
        except image_descriptions.ImageDescriptionError as error:
            raise EditorRefusal(str(error), status=200) from error
        return {
            "description": description.text,
            "current": self.image.description,
            "offline": description.offline,
            "alias": description.alias,
            "model": description.model_id,
        }


class ImageDescriptionStatusView(View):
    """GET: whether the button is shown for the image ``image_id``: only to
    users with ``use_ai_in_editor`` who may change the image, when an alias
    that takes images is configured. No provider is asked.

    A user who may not use it gets ``{"ok": true, "available": false}``
    rather than a 403: the script asks on every image edit page, and a
    refusal there is the normal case for most editors, not an error to log.
    """

    http_method_names = ["get"]

    def get(self, request: HttpRequest, image_id: int) -> HttpResponseBase:
        image = None
        if request.user.has_perm(EDITOR_PERMISSION):
            try:
                image = _image(request, image_id)
            except EditorRefusal:
                image = None
        try:
            available = image is not None and image_descriptions.is_available()
        except InvalidAIBackendError:
            available = False
        payload: dict[str, Any] = {"ok": True, "available": available}
        if available:
            payload["url"] = reverse(
                "wagtail_vector_index:image_description", args=[image.pk]
            )
        response = JsonResponse(payload)
        response["Cache-Control"] = "no-store"
        return response


def js_strings() -> dict[str, str]:
    """The script's texts, translated in the language of the page."""
    return {
        "button": gettext("Describe with AI"),
        "working": gettext("Describing the image…"),
        "suggestion": gettext("Suggested description"),
        "current": gettext("Current description"),
        "empty": gettext("(empty)"),
        "use": gettext("Use this"),
        "again": gettext("Try again"),
        "cancel": gettext("Cancel"),
        "offline": gettext("Written by an offline backend, which cannot see images."),
        "failed": gettext("The description could not be made: %(message)s"),
        "network": gettext("The server could not be reached. Try again."),
    }


def editor_js() -> str:
    """The ``insert_editor_js`` output: the controller and its settings
    (URLs with a placeholder id, the texts). It does nothing on pages other
    than the image edit view."""
    from wagtail.admin.staticfiles import versioned_static

    def url(name: str) -> str:
        return reverse(name, args=[ID_PLACEHOLDER])

    config = {
        "editUrl": url("wagtailimages:edit"),
        "statusUrl": url("wagtail_vector_index:image_description_status"),
        "placeholder": str(ID_PLACEHOLDER),
        "strings": js_strings(),
    }
    return format_html(
        '{}<script src="{}" defer></script><script src="{}" defer></script>',
        json_script(config, "wvi-image-description-config"),
        versioned_static(EDITOR_COMMON_JS),
        versioned_static("wagtail_vector_index/js/image-description-controller.js"),
    )
