"""Searches restricted by a filter, a site, a locale and a user's view rights.

Runs on both storages (``make test`` runs it again with
``--ds=tests.settings_postgres``): a restricted search returns the best
``limit`` matches within the restriction, never the best overall cut down.
"""

import pytest
from django.contrib.auth.models import Group
from django.db.models import Q
from django.test import override_settings
from django.utils import translation
from wagtail.models import Locale, Page, PageViewRestriction, Site

from tests.testapp.models import ArticlePage
from tests.utils import OFFLINE, make_user, root_page
from wagtail_vector_index.index import VectorIndex
from wagtail_vector_index.index.scope import ALL_LOCALES

pytestmark = pytest.mark.django_db

WORDS = (
    "garden soil compost seed water light leaf root stem flower fruit tree "
    "bread oven flour yeast salt crust dough bake sugar butter milk egg "
    "star planet moon orbit comet galaxy night lens sky telescope light dark"
).split()


class Articles(VectorIndex):
    """Every article page, restricted ones included (never behind a password)."""

    name = "scope-articles"
    include_restricted = True

    def get_querysets(self):
        return [ArticlePage.objects.all()]


@pytest.fixture(autouse=True)
def offline():
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        yield


@pytest.fixture
def home():
    return root_page().add_child(instance=Page(title="Home", slug="scope-home"))


def article(parent, title, body, **kwargs):
    return parent.add_child(
        instance=ArticlePage(title=title, body=f"<p>{body}</p>", **kwargs)
    )


@pytest.fixture
def many(home):
    """200 articles mixing three topics' words; two of them in a section."""
    pages = []
    for number in range(198):
        words = " ".join(WORDS[(number * 7 + i) % len(WORDS)] for i in range(12))
        pages.append(article(home, f"Article {number}", words))
    section = home.add_child(instance=Page(title="Section", slug="section"))
    kept = [
        article(section, "Kept bread", "flour water salt"),
        article(section, "Kept stars", "a comet passes the moon"),
    ]
    index = Articles()
    index.update()
    return index, pages, kept


def test_a_filter_keeping_one_percent_returns_its_best_matches(many):
    index, _, kept = many
    query = "telescope night sky galaxy star planet"
    everywhere = index.search(query, limit=5)
    assert not set(everywhere) & set(kept)  # The filter changes the answer.

    found = index.search(
        query, limit=5, similarity_threshold=-1, filter=Q(pk__in=[p.pk for p in kept])
    )

    # Both kept pages, in the order of the unfiltered ranking.
    ranking = [
        p for p in index.search(query, limit=200, similarity_threshold=-1) if p in kept
    ]
    assert found == ranking
    assert len(found) == 2


def test_the_best_limit_within_the_filter_not_fewer(many):
    index, pages, kept = many
    subset = pages[:20:2] + kept  # 12 pages, about 6% of the index
    query = "flour oven bread"
    ranking = [p for p in index.search(query, limit=200) if p in subset]

    found = index.search(
        query, limit=4, filter=ArticlePage.objects.filter(pk__in=[p.pk for p in subset])
    )

    assert found == ranking[:4]


def test_a_filter_on_a_section_of_the_tree(many):
    index, _, kept = many
    section = Page.objects.get(slug="section")

    found = index.search(
        "anything", limit=10, filter=Page.objects.descendant_of(section)
    )

    assert set(found) == set(kept)


def test_find_similar_and_query_take_the_filter(many):
    index, pages, kept = many
    only = Q(pk__in=[kept[1].pk])

    assert index.find_similar(kept[0], limit=3, filter=only) == [kept[1]]
    response = index.query("What passes the moon?", filter=only)
    assert response.sources == [kept[1]]


def test_a_filter_of_another_model_finds_nothing(many):
    from tests.testapp.models import Book

    index, _, _ = many
    assert index.search("bread", filter=Book.objects.all()) == []


def test_a_filter_must_be_a_queryset_or_q(many):
    index, _, _ = many
    with pytest.raises(TypeError, match="queryset of the indexed model or a Q"):
        index.search("bread", filter={"pk": 1})


# -- sites ---------------------------------------------------------------------


@pytest.fixture
def two_sites():
    root = root_page()
    home_a = root.add_child(instance=Page(title="A", slug="site-a"))
    home_b = root.add_child(instance=Page(title="B", slug="site-b"))
    Site.objects.all().delete()
    site_a = Site.objects.create(
        hostname="a.example", root_page=home_a, is_default_site=True
    )
    site_b = Site.objects.create(hostname="b.example", root_page=home_b)
    pages = {
        "a": article(home_a, "Tomatoes in A", "tomatoes need sun and water"),
        "b": article(home_b, "Tomatoes in B", "tomatoes need sun and water too"),
    }
    index = Articles()
    index.update()
    return index, site_a, site_b, pages


def test_results_come_from_the_sites_pages_only(two_sites, rf):
    index, site_a, site_b, pages = two_sites

    assert index.search("tomatoes", site=site_a) == [pages["a"]]
    assert index.search("tomatoes", site=site_b) == [pages["b"]]
    request = rf.get("/", HTTP_HOST="b.example")
    assert index.search("tomatoes", request=request) == [pages["b"]]
    assert set(index.search("tomatoes")) == set(pages.values())


def test_site_and_locale_searches_never_load_the_index_keys(two_sites, rf, monkeypatch):
    index, site_a, site_b, pages = two_sites
    assert index.storage.filters_in_engine

    def refuse(*args, **kwargs):
        raise AssertionError("allowed_keys() was called")

    monkeypatch.setattr("wagtail_vector_index.index.scope.allowed_keys", refuse)
    assert index.search("tomatoes", site=site_a) == [pages["a"]]
    request = rf.get("/", HTTP_HOST="b.example")
    assert index.search("tomatoes", request=request) == [pages["b"]]
    assert index.search("tomatoes", site=site_b, locale=ALL_LOCALES) == [pages["b"]]


def test_a_page_moved_to_another_site_is_found_there(
    two_sites, django_capture_on_commit_callbacks
):
    _, site_a, site_b, pages = two_sites
    index = ArticlePage.vector_index  # Registered: publish-time updates find it.
    index.update()
    moved = pages["a"]
    with override_settings(WAGTAIL_VECTOR_INDEX={**OFFLINE, "AUTO_UPDATE": True}):
        with django_capture_on_commit_callbacks(execute=True):
            moved.move(site_b.root_page, pos="last-child")
    moved.refresh_from_db()

    assert set(index.search("tomatoes", site=site_b)) == {moved, pages["b"]}
    assert index.search("tomatoes", site=site_a) == []
    assert index.update().unchanged  # The move was applied: nothing left to do.


def test_an_update_rewrites_a_page_moved_without_auto_update(two_sites):
    index, site_a, site_b, pages = two_sites
    moved = pages["a"]
    moved.move(site_b.root_page, pos="last-child")
    moved.refresh_from_db()

    # Until the next update, found where it was stored, never outside a scope.
    assert index.search("tomatoes", site=site_a) == []
    report = index.update()
    # Rewritten (its stored path changed), its vector reused.
    assert (report.changed, report.embedded) == (1, 0)
    assert set(index.search("tomatoes", site=site_b)) == {moved, pages["b"]}


# -- locales -------------------------------------------------------------------


@pytest.fixture
def two_locales(settings, home):
    settings.WAGTAIL_I18N_ENABLED = True
    settings.LANGUAGE_CODE = "en"
    settings.WAGTAIL_CONTENT_LANGUAGES = settings.LANGUAGES = [
        ("en", "English"),
        ("fr", "French"),
    ]
    english = Locale.objects.get_or_create(language_code="en")[0]
    french = Locale.objects.get_or_create(language_code="fr")[0]
    pages = {
        "en": article(home, "Bread", "flour water salt yeast", locale=english),
    }
    french_home = home.copy_for_translation(french)
    pages["fr"] = article(french_home, "Pain", "flour water salt yeast", locale=french)
    index = Articles()
    index.update()
    return index, pages


def test_results_come_from_the_active_locale(two_locales):
    index, pages = two_locales

    with translation.override("en"):
        assert index.search("flour yeast") == [pages["en"]]
    with translation.override("fr"):
        assert index.search("flour yeast") == [pages["fr"]]
    assert index.search("flour yeast", locale="fr") == [pages["fr"]]
    assert set(index.search("flour yeast", locale=ALL_LOCALES)) == set(pages.values())


# -- view restrictions -----------------------------------------------------------


@pytest.fixture
def restricted(home):
    members = Group.objects.create(name="Members")
    public = article(home, "Public roses", "roses flower in spring")
    group_only = article(home, "Members roses", "roses flower in spring for members")
    login_only = article(home, "Login roses", "roses flower in spring when logged in")
    secret = article(home, "Secret roses", "roses flower in spring behind a password")
    PageViewRestriction.objects.create(
        page=group_only, restriction_type=PageViewRestriction.GROUPS
    ).groups.add(members)
    PageViewRestriction.objects.create(
        page=login_only, restriction_type=PageViewRestriction.LOGIN
    )
    PageViewRestriction.objects.create(
        page=secret, restriction_type=PageViewRestriction.PASSWORD, password="x"
    )
    member = make_user("member")
    member.groups.add(members)
    index = Articles()
    index.update()
    return index, members, member, public, group_only, login_only, secret


def test_public_pages_only_without_a_user(restricted):
    index, _, _, public, *_ = restricted
    assert index.search("roses", limit=10) == [public]


def test_a_member_finds_the_group_page_others_do_not(restricted):
    index, _, member, public, group_only, login_only, _ = restricted
    other = make_user("other")

    assert set(index.search("roses", limit=10, user=member)) == {
        public,
        group_only,
        login_only,
    }
    assert set(index.search("roses", limit=10, user=other)) == {public, login_only}


def test_a_password_protected_page_is_never_indexed_nor_found(restricted):
    index, _, member, *_, secret = restricted
    superuser = make_user("root", superuser=True)

    assert secret not in index.search("password roses", limit=10, user=superuser)
    assert secret not in index.search("password roses", limit=10, user=member)
    assert (
        not index.storage.chunks(index.storage.state().active_build)
        .filter(object_id=str(secret.pk))
        .exists()
    )


def test_restricted_pages_are_not_indexed_unless_asked(restricted):
    _, _, member, public, *_ = restricted
    index = ArticlePage.vector_index  # include_restricted is off by default
    index.update()
    assert index.search("roses", limit=10, user=member) == [public]


def test_the_admin_index_search_uses_the_editors_view_rights(restricted):
    from django.urls import reverse

    from tests.utils import INDEX_SEARCH_URL, logged_in
    from wagtail_vector_index.index import registry

    index = restricted[0]
    registry._custom[index.name] = index
    try:
        editor = make_user("search-editor", "use_ai_test_pages")
        editor.groups.add(Group.objects.get(name="Members"))
        outsider = make_user("search-outsider", "use_ai_test_pages")
        form = {
            "search-index": index.name,
            "search-query": "roses",
            "search-limit": 10,
            "search-similarity_threshold": -1,
        }
        url = reverse(INDEX_SEARCH_URL)
        seen = logged_in(editor).post(url, form).content.decode()
        other = logged_in(outsider).post(url, form).content.decode()
    finally:
        del registry._custom[index.name]
    assert "Members roses" in seen
    assert "Members roses" not in other
    assert "Public roses" in other
