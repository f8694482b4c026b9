"""The endpoint behind the editor's related pages and "Already published?"
panels (``wagtail_vector_index.panels.RelatedPagesPanel`` and
``AlreadyPublishedPanel``).

The panel posts the whole page edit form as it stands (unsaved changes
included) plus a few ``wvi-`` fields that say which page is edited (or, in
the create view, its parent and type) and, for related pages, which inline
relation holds the chosen pages. The page's form is built and cleaned as the
editor's own view would, the page's text made as its vector index makes it
(its ``embedding_fields``), embedded with the index's embedding backend (one
call, recorded as ``related pages`` for the page's site and the editor, and
counted against both budgets) and searched for in the index: live pages of
the same site and locale that the editor may view, never the page itself nor
a page already chosen. No chat call, and nothing is saved.
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _

from wagtail_vector_index import usage
from wagtail_vector_index.views.editor import (
    EditorEndpoint,
    EditorRefusal,
    bind_unsaved,
    posted_int,
)

#: The ledger's feature label of both panels.
FEATURE = "related pages"
DEFAULT_LIMIT = 5
MAX_LIMIT = 20


def chosen_page_ids(data: Any, relation: str, page_field: str) -> set[int]:
    """The pages chosen in the inline formset ``relation`` of the posted
    form ``data`` (children marked for deletion left out)."""
    if not relation or not page_field:
        return set()
    total = posted_int(data.get(f"{relation}-TOTAL_FORMS")) or 0
    chosen = set()
    for number in range(min(total, 1000)):
        prefix = f"{relation}-{number}"
        if data.get(f"{prefix}-DELETE") in ("1", "on", "true", "True"):
            continue
        page_id = posted_int(data.get(f"{prefix}-{page_field}"))
        if page_id is not None:
            chosen.add(page_id)
    return chosen


class RelatedPagesView(EditorEndpoint):
    """POST the page edit form: the live pages closest to its content."""

    def validate(self, request: HttpRequest, *args: Any, **kwargs: Any) -> None:
        # Refusals that need no provider are not counted by the rate limit.
        data = request.POST
        instance, parent, page = self._page(data, request.user)
        model = type(instance)
        index = getattr(model, "vector_index", None)
        if index is None:
            raise EditorRefusal(
                _(
                    "Pages of type “%(type)s” have no vector index: add "
                    "VectorIndexedMixin and embedding_fields to the model."
                )
                % {"type": model._meta.verbose_name}
            )
        site = (page or parent).get_site()
        if site is None:
            raise EditorRefusal(
                _(
                    "This page belongs to no site: similar pages are found "
                    "within a site."
                )
            )
        from wagtail_vector_index.index.base import IndexNeedsRebuildError

        try:
            state = index.check_state()
        except IndexNeedsRebuildError as error:
            raise EditorRefusal(str(error), status=200) from error
        if state is None:
            raise EditorRefusal(
                _(
                    "The vector index of these pages has not been built yet: "
                    "run manage.py update_vector_indexes."
                ),
                status=200,
            )
        self.found = (index, instance, parent, site)

    def answer(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        from wagtail.models import Page

        data = request.POST
        user = request.user
        index, instance, parent, site = self.found
        # The editor's unsaved changes (fields that do not validate keep
        # their saved value); nothing is saved.
        instance = bind_unsaved(
            request,
            instance.get_edit_handler().get_form_class(),
            instance,
            parent_page=parent,
        ).instance
        chosen = chosen_page_ids(
            data, data.get("wvi-relation", ""), data.get("wvi-page-field", "")
        )
        excluded = list(
            Page.objects.filter(pk__in=chosen).values_list("content_type_id", "pk")
        )
        limit = min(
            max(posted_int(data.get("wvi-limit")) or DEFAULT_LIMIT, 1), MAX_LIMIT
        )
        with usage.usage_context(
            feature=FEATURE, site=site, user=user, user_budget=True
        ):
            results = index.similar_results(
                instance,
                limit,
                exclude=excluded,
                stored=False,
                site=site,
                user=user,
                locale=getattr(instance, "locale", None),
            )
        return {
            "results": [self._describe(result, request) for result in results],
            "message": "" if results else _("No similar published pages were found."),
        }

    def _page(self, data: Any, user: Any) -> tuple[Any, Any, Any]:
        """The page being edited (its latest revision), its parent, and the
        page itself (``None`` in the create view), checked against the
        editor's permissions."""
        from wagtail.models import Page

        page_id = posted_int(data.get("wvi-page"))
        if page_id is not None:
            page = Page.objects.filter(pk=page_id).first()
            if page is None:
                raise EditorRefusal(_("This page no longer exists."), status=404)
            page = page.specific
            if not page.permissions_for_user(user).can_edit():
                raise EditorRefusal(
                    _("You do not have permission to edit this page."), status=403
                )
            return page.get_latest_revision_as_object(), page.get_parent(), page
        parent = Page.objects.filter(pk=posted_int(data.get("wvi-parent"))).first()
        content_type = _content_type(data.get("wvi-content-type", ""))
        model = content_type.model_class() if content_type else None
        if parent is None or model is None or not issubclass(model, Page):
            raise EditorRefusal(_("The page being edited is not known."), status=400)
        if not parent.permissions_for_user(user).can_add_subpage():
            raise EditorRefusal(
                _("You do not have permission to add a page here."), status=403
            )
        instance = model()
        instance.locale = parent.locale
        return instance, parent.specific, None

    def _describe(self, result: Any, request: HttpRequest) -> dict[str, Any]:
        page = result.object
        can_edit = page.permissions_for_user(request.user).can_edit()
        similarity = max(float(result.score), 0.0)
        return {
            "id": page.pk,
            "title": page.get_admin_display_title(),
            "url": page.get_url(request=request) or "",
            "edit_url": (
                reverse("wagtailadmin_pages:edit", args=[page.pk]) if can_edit else ""
            ),
            "similarity": round(similarity, 4),
            "percent": round(similarity * 100),
        }


def _content_type(value: str) -> ContentType | None:
    """``app_label.model`` as a content type (``None`` if unknown)."""
    app_label, _dot, model = value.partition(".")
    if not app_label or not model:
        return None
    try:
        return ContentType.objects.get_by_natural_key(app_label, model.lower())
    except ContentType.DoesNotExist:
        return None
