"""What a search may return: a filter, a site, a locale, a user's view rights.

:class:`Scope` holds what a caller gave (``filter=``, ``site=`` or
``request=``, ``user=``, ``locale=``). A storage that filters inside its
engine gets it as a ``Where`` (:func:`where`): tree paths, a locale and,
for a ``filter=`` only, the objects allowed, matched against what is stored
with each chunk (:func:`attributes`). Other storages get the keys
``(content type id, object id)`` they may return (:func:`allowed_keys`).
Either way a search returns the best ``limit`` matches *within* the scope,
not the best overall cut down afterwards; the objects found are checked
again (:func:`restrict`) when they are loaded, so that what is stored with a
chunk can only be out of date in a way that leaves objects out, never in.

Pages are restricted by their place in the tree (a site's pages are the
descendants of its root page), their locale (with Wagtail's
internationalisation on: the active language's by default) and their view
restrictions: without a user, public pages only; with one, also the pages
behind a login or a group restriction the user passes (a superuser passes
every group restriction, as in Wagtail); pages behind a password never, since
a search cannot know whether the visitor typed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models

Key = tuple[int, str]


@dataclass(frozen=True)
class Scope:
    """A search's restrictions (``None``: not restricted that way)."""

    filter: Any = None
    site: Any = None
    user: Any = None
    #: A ``Locale`` or a language code; ``None``: the active language's
    #: when ``WAGTAIL_I18N_ENABLED``, else every locale; :data:`ALL_LOCALES`:
    #: every locale.
    locale: Any = None

    @property
    def anonymous(self) -> bool:
        return self.user is None or not getattr(self.user, "is_authenticated", False)


EVERYTHING = Scope()
#: ``locale=`` for a search across every locale.
ALL_LOCALES = "*"


def make_scope(
    *,
    filter: Any = None,  # noqa: A002 (the public keyword argument's name)
    site: Any = None,
    request: Any = None,
    user: Any = None,
    locale: Any = None,
) -> Scope:
    """A :class:`Scope` from a search's keyword arguments: ``request`` gives
    the site (as Wagtail finds it) and, unless ``user`` is given, its user."""
    if filter is not None and not isinstance(filter, (models.Q, models.QuerySet)):
        raise TypeError(
            "filter must be a queryset of the indexed model or a Q object, "
            f"not {type(filter).__name__}."
        )
    if request is not None:
        if site is None:
            from wagtail.models import Site

            site = Site.find_for_request(request)
        if user is None:
            user = getattr(request, "user", None)
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    return Scope(filter=filter, site=site, user=user, locale=locale)


def _is_page_model(model: type) -> bool:
    from wagtail.models import Page

    return issubclass(model, Page)


def _locale(scope: Scope, model: type) -> Any:
    """The locale ``model``'s objects are restricted to, or ``None``."""
    from wagtail.models import Locale, TranslatableMixin

    if not issubclass(model, TranslatableMixin) or scope.locale == ALL_LOCALES:
        return None
    if scope.locale is not None:
        if isinstance(scope.locale, Locale):
            return scope.locale
        return Locale.objects.get_for_language(scope.locale)
    if getattr(settings, "WAGTAIL_I18N_ENABLED", False):
        return Locale.get_active()
    return None


def restricts(scope: Scope, index: Any) -> bool:
    """Whether ``scope`` leaves out some of what ``index`` holds beyond what
    :func:`visible` checks on the objects found."""
    if scope.filter is not None or scope.site is not None:
        return True
    if scope.locale == ALL_LOCALES:
        return False
    if scope.locale:
        return True
    if getattr(settings, "WAGTAIL_I18N_ENABLED", False):
        from wagtail.models import TranslatableMixin

        return any(
            issubclass(queryset.model, TranslatableMixin)
            for queryset in index.get_querysets()
        )
    return False


def restrict(index: Any, queryset: models.QuerySet, scope: Scope) -> models.QuerySet:
    """``queryset`` (one of the index's) cut down to ``scope``."""
    queryset = visible(index, index.indexable(queryset), scope)
    model = queryset.model
    wanted = scope.filter
    if isinstance(wanted, models.Q):
        queryset = queryset.filter(wanted)
    elif isinstance(wanted, models.QuerySet):
        if issubclass(model, wanted.model) or issubclass(wanted.model, model):
            queryset = queryset.filter(pk__in=wanted.values("pk"))
        else:
            queryset = queryset.none()
    if scope.site is not None and _is_page_model(model):
        queryset = queryset.in_site(scope.site)
    locale = _locale(scope, model)
    if locale is not None:
        queryset = queryset.filter(locale=locale)
    return queryset


def allowed_keys(index: Any, scope: Scope) -> set[Key] | None:
    """The keys a search in ``scope`` may return (``None``: any)."""
    if not restricts(scope, index):
        return None
    keys: set[Key] = set()
    for queryset in index.get_querysets():
        queryset = restrict(index, queryset, scope)
        if _is_page_model(queryset.model):
            # A page's chunks are stored under its specific type.
            rows = queryset.values_list("content_type_id", "pk")
            keys.update((content_type, str(pk)) for content_type, pk in rows)
        else:
            content_type = ContentType.objects.get_for_model(queryset.model).pk
            keys.update(
                (content_type, str(pk)) for pk in queryset.values_list("pk", flat=True)
            )
    return keys


def where(index: Any, scope: Scope) -> Any:
    """What a storage filtering inside its engine is asked for a search in
    ``scope`` (a :class:`~wagtail_vector_index.index.storage.types.Where`),
    or ``None`` when nothing is left out. Never loads the index's keys,
    except for a ``filter=`` (turned into the objects it allows)."""
    from wagtail_vector_index.index.storage.types import Where

    querysets = list(index.get_querysets())
    pages = any(_is_page_model(queryset.model) for queryset in querysets)
    keys = None
    if scope.filter is not None:
        keys = frozenset(allowed_keys(index, scope) or ())
    paths = None
    if scope.site is not None and pages:
        paths = (scope.site.root_page.path,)
    locale_id = None
    for queryset in querysets:
        locale = _locale(scope, queryset.model)
        if locale is not None:
            locale_id = locale.pk
            break
    excluded: tuple[str, ...] = ()
    if pages and getattr(index, "include_restricted", False):
        excluded = tuple(
            restriction.page.path
            for restriction in _restrictions()
            if scope.anonymous or not _passes(restriction, scope.user)
        )
    found = Where(paths=paths, excluded_paths=excluded, locale_id=locale_id, keys=keys)
    return None if found == Where() else found


def attributes(obj: Any) -> tuple[str, int | None]:
    """What a scoped search filters ``obj``'s chunks on: its tree path (a
    page's; ``""`` otherwise) and its locale's id (``None`` for objects
    that are not translatable)."""
    from wagtail.models import Page, TranslatableMixin

    path = obj.path if isinstance(obj, Page) else ""
    locale_id = obj.locale_id if isinstance(obj, TranslatableMixin) else None
    return path, locale_id


def visible(index: Any, queryset: models.QuerySet, scope: Scope) -> models.QuerySet:
    """What the scope's user (or an anonymous visitor) may see of
    ``queryset`` under Wagtail's view restrictions."""
    if not _is_page_model(queryset.model):
        return queryset
    if scope.anonymous or not getattr(index, "include_restricted", False):
        return queryset.public()
    closed = [
        restriction.page.path
        for restriction in _restrictions()
        if not _passes(restriction, scope.user)
    ]
    return exclude_subtrees(queryset, closed)


def exclude_subtrees(queryset: models.QuerySet, paths: list[str]) -> models.QuerySet:
    """``queryset`` without the pages at or below ``paths``."""
    if not paths:
        return queryset
    below = models.Q()
    for path in paths:
        below |= models.Q(path__startswith=path)
    return queryset.exclude(below)


def password_protected_paths() -> list[str]:
    """The tree paths of pages behind a password (never indexed, never found)."""
    from wagtail.models import PageViewRestriction

    return [
        restriction.page.path
        for restriction in _restrictions()
        if restriction.restriction_type == PageViewRestriction.PASSWORD
    ]


def _restrictions() -> list[Any]:
    from wagtail.models import PageViewRestriction

    return list(
        PageViewRestriction.objects.select_related("page").prefetch_related("groups")
    )


def _passes(restriction: Any, user: Any) -> bool:
    """Whether ``user`` may view the pages behind ``restriction`` (what
    Wagtail's ``accept_request`` decides, a password aside)."""
    from wagtail.models import PageViewRestriction

    kind = restriction.restriction_type
    if kind == PageViewRestriction.LOGIN:
        return True  # The user is authenticated.
    if kind == PageViewRestriction.GROUPS:
        if user.is_superuser:
            return True
        wanted = {group.pk for group in restriction.groups.all()}
        return bool(wanted & set(user.groups.values_list("pk", flat=True)))
    if kind == PageViewRestriction.NONE:
        return True
    return False  # A password: a search never knows it.
