"""The related pages and "Already published?" panels of the page editor and
their endpoint (``wagtail_vector_index.panels.RelatedPagesPanel``,
``AlreadyPublishedPanel``; ``views/related_pages.py``).

What is found: live pages of the edited page's site and locale that the
editor may view, closest to the page as the editor has it now (its unsaved
form data), never the page itself nor a page already in the list. What is
sent: that unsaved text, once, to the index's embedding backend; what is
recorded: one ledger row labelled ``related pages`` with the editor and the
site.
"""

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from django.urls import reverse
from wagtail.models import (
    Locale,
    Page,
    PageViewRestriction,
    Site,
)
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text

from tests.testapp.models import ArticlePage, ArticleRelatedPage
from tests.utils import (
    OFFLINE,
    add_article,
    embedding_backend_settings,
    logged_in,
    make_editor,
    only_site,
    root_page,
    use_up,
)
from wagtail_vector_index.panels import AlreadyPublishedPanel, RelatedPagesPanel

pytestmark = pytest.mark.django_db

URL = "wagtail_vector_index:editor_related_pages"


@pytest.fixture(autouse=True)
def offline():
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        yield


def editor_user(name="related-editor", *, ai=True):
    """Admin access, edit rights on every page, and (``ai``) the
    ``use_ai_in_editor`` permission."""
    return make_editor(name, ai=ai)


@pytest.fixture
def editor():
    return editor_user()


@pytest.fixture
def pages():
    """Two sites; in the first, the edited page, pages about the same and
    other things, a draft and a page already chosen."""
    root = root_page()
    home = root.add_child(instance=Page(title="Home", slug="related-home"))
    other_home = root.add_child(instance=Page(title="Other", slug="related-other"))
    Site.objects.all().delete()
    site = Site.objects.create(
        hostname="a.example", root_page=home, is_default_site=True
    )
    other_site = Site.objects.create(hostname="b.example", root_page=other_home)
    found = {
        "site": site,
        "other_site": other_site,
        "home": home,
        "edited": add_article(home, "Growing tomatoes", "Tomatoes need sun and water."),
        "close": add_article(
            home, "Tomatoes in pots", "Tomatoes in pots need sun, water and soil."
        ),
        "chosen": add_article(
            home, "Tomato soil", "Tomatoes need rich soil and water."
        ),
        "bread": add_article(home, "Baking bread", "Flour, water, yeast and an oven."),
        "stars": add_article(
            home, "Watching stars", "A telescope shows distant stars."
        ),
        "elsewhere": add_article(
            other_home, "Tomatoes elsewhere", "Tomatoes need sun and water."
        ),
    }
    draft = ArticlePage(title="Tomato draft", body="<p>Tomatoes need sun.</p>")
    draft.live = False
    found["draft"] = home.add_child(instance=draft)
    ArticleRelatedPage.objects.create(source=found["edited"], page=found["chosen"])
    ArticlePage.vector_index.update()
    return found


def form_data(page, *, title=None, body=None, related=(), **fields):
    """What the page editor posts: the edit form as it stands, plus the
    panel's ``wvi-`` fields."""
    data = nested_form_data(
        {
            "title": page.title if title is None else title,
            "slug": page.slug,
            "intro": page.intro,
            "body": rich_text(page.body if body is None else f"<p>{body}</p>"),
            "summary": page.summary,
            "related_pages": inline_formset([{"page": p.pk} for p in related]),
            "comments": inline_formset([]),
        }
    )
    data.update(
        {
            "wvi-page": page.pk,
            "wvi-relation": "related_pages",
            "wvi-page-field": "page",
            "wvi-limit": 10,
        }
    )
    data.update(fields)
    return data


def suggest(user, data):
    response = logged_in(user).post(reverse(URL), data)
    return response, response.json()


def titles(payload):
    return [result["title"] for result in payload["results"]]


# -- what is found -----------------------------------------------------------------


def test_live_pages_of_the_site_never_the_page_itself_nor_those_chosen(pages, editor):
    response, payload = suggest(
        editor, form_data(pages["edited"], related=[pages["chosen"]])
    )

    assert response.status_code == 200
    assert payload["ok"] is True
    found = titles(payload)
    assert found[0] == "Tomatoes in pots"
    assert set(found) <= {"Tomatoes in pots", "Baking bread", "Watching stars"}
    for left_out in (
        "Growing tomatoes",
        "Tomato soil",
        "Tomato draft",
        "Tomatoes elsewhere",
    ):
        assert left_out not in found
    best = payload["results"][0]
    assert best["id"] == pages["close"].pk
    assert best["url"] == "/tomatoes-in-pots/"
    assert best["edit_url"] == reverse(
        "wagtailadmin_pages:edit", args=[pages["close"].pk]
    )
    assert 0 < best["similarity"] <= 1
    assert best["percent"] == round(best["similarity"] * 100)


def test_a_chosen_page_removed_in_the_form_is_suggested_again(pages, editor):
    data = form_data(pages["edited"], related=[pages["chosen"]])
    data["related_pages-0-DELETE"] = "1"

    _, payload = suggest(editor, data)

    assert "Tomato soil" in titles(payload)


def test_already_published_mode_leaves_out_only_the_page_itself(pages, editor):
    data = form_data(pages["edited"])
    for name in ("wvi-relation", "wvi-page-field"):
        del data[name]

    _, payload = suggest(editor, data)

    assert "Tomato soil" in titles(payload)
    assert "Growing tomatoes" not in titles(payload)


def test_the_unsaved_content_decides_not_the_saved_one(pages, editor):
    saved = titles(suggest(editor, form_data(pages["edited"]))[1])
    assert saved[0] != "Baking bread"

    _, payload = suggest(
        editor,
        form_data(
            pages["edited"],
            title="Bread at home",
            body="Flour, water and yeast, baked in a hot oven.",
        ),
    )

    assert titles(payload)[0] == "Baking bread"
    pages["edited"].refresh_from_db()
    assert pages["edited"].title == "Growing tomatoes"  # Nothing was saved.


def test_a_new_page_in_the_create_view(pages, editor):
    new = ArticlePage(title="Stargazing", slug="stargazing", body="")
    data = form_data(new, body="A telescope and a dark sky show the stars.")
    del data["wvi-page"]
    data["wvi-parent"] = pages["home"].pk
    data["wvi-content-type"] = "testapp.articlepage"

    _, payload = suggest(editor, data)

    assert titles(payload)[0] == "Watching stars"
    assert not ArticlePage.objects.filter(slug="stargazing").exists()


@pytest.fixture
def two_locales(settings, pages):
    settings.WAGTAIL_I18N_ENABLED = True
    settings.WAGTAIL_CONTENT_LANGUAGES = settings.LANGUAGES = [
        ("en", "English"),
        ("fr", "French"),
    ]
    french = Locale.objects.get_or_create(language_code="fr")[0]
    french_home = pages["home"].copy_for_translation(french)
    french_home.save_revision().publish()
    french_page = add_article(
        french_home, "Tomates", "Tomatoes need sun and water.", locale=french
    )
    ArticlePage.vector_index.update()
    return french_page


def test_pages_of_another_locale_are_left_out(two_locales, pages, editor):
    _, payload = suggest(editor, form_data(pages["edited"]))
    assert "Tomates" not in titles(payload)
    assert titles(payload)[0] == "Tomatoes in pots"

    _, payload = suggest(editor, form_data(two_locales))
    assert titles(payload) == []
    assert payload["message"] == "No similar published pages were found."


def test_pages_behind_a_view_restriction_only_for_editors_who_may_view_them(
    pages, editor, monkeypatch
):
    index = ArticlePage.vector_index
    monkeypatch.setattr(index, "include_restricted", True)
    members = Group.objects.create(name="Members")
    hidden = add_article(
        pages["home"], "Members tomatoes", "Tomatoes need sun and water."
    )
    PageViewRestriction.objects.create(
        page=hidden, restriction_type=PageViewRestriction.GROUPS
    ).groups.add(members)
    secret = add_article(
        pages["home"], "Secret tomatoes", "Tomatoes need sun and water."
    )
    PageViewRestriction.objects.create(
        page=secret, restriction_type=PageViewRestriction.PASSWORD, password="x"
    )
    index.update()
    member = editor_user("member-editor")
    member.groups.add(members)

    assert "Members tomatoes" not in titles(
        suggest(editor, form_data(pages["edited"]))[1]
    )
    found = titles(suggest(member, form_data(pages["edited"]))[1])
    assert "Members tomatoes" in found
    assert "Secret tomatoes" not in found


# -- what is sent and recorded --------------------------------------------------


def test_the_unsaved_text_is_embedded_once_and_recorded(provider, pages, editor):
    from wagtail_vector_index.models import AIUsageRecord

    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "EMBEDDING_BACKENDS": {"default": embedding_backend_settings(provider)}
        }
    ):
        ArticlePage.vector_index.update()
        provider.reset()
        AIUsageRecord.objects.all().delete()

        _, payload = suggest(
            editor,
            form_data(
                pages["edited"],
                title="Tomatoes on a balcony",
                body="Unsaved words about <b>balcony</b> tomatoes.",
            ),
        )

    assert payload["ok"] is True
    (request,) = provider.requests_to("/v1/embeddings")
    (text,) = request.json["input"]
    assert "Tomatoes on a balcony" in text
    assert "Unsaved words about balcony tomatoes." in text
    assert "<b>" not in text
    (record,) = AIUsageRecord.objects.all()
    assert record.feature == "related pages"
    assert record.kind == "embedding"
    assert record.user == editor
    assert record.site == pages["site"]
    assert not provider.requests_to("/v1/chat/completions")


def test_a_used_up_daily_budget_is_a_message_and_no_call(provider, pages, editor):
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "EMBEDDING_BACKENDS": {"default": embedding_backend_settings(provider)},
            "USAGE": {"USER_DAILY_BUDGET_TOKENS": 500},
        }
    ):
        ArticlePage.vector_index.update()
        provider.reset()
        use_up(f"user:{editor.pk}", "day", 500)
        response, payload = suggest(editor, form_data(pages["edited"]))

    assert response.status_code == 200
    assert payload["ok"] is False
    assert "Your daily AI budget is used up" in payload["message"]
    assert not provider.requests_to("/v1/embeddings")


def test_a_provider_failure_is_a_readable_message(provider, pages, editor):
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "EMBEDDING_BACKENDS": {"default": embedding_backend_settings(provider)}
        }
    ):
        ArticlePage.vector_index.update()
        provider.fail("500")
        response, payload = suggest(editor, form_data(pages["edited"]))

    assert response.status_code == 200
    assert payload["ok"] is False
    assert payload["message"]
    assert "Traceback" not in payload["message"]


# -- refusals ------------------------------------------------------------------------


def test_without_the_permission_403(pages):
    outsider = editor_user("no-ai-editor", ai=False)
    response, payload = suggest(outsider, form_data(pages["edited"]))
    assert response.status_code == 403
    assert payload == {
        "ok": False,
        "message": "You do not have permission to use AI suggestions in the editor.",
    }


def test_the_rate_limit_counts_each_suggestion(pages, editor):
    with override_settings(
        WAGTAIL_VECTOR_INDEX={**OFFLINE, "TEST_PAGES_RATE_LIMIT": 2}
    ):
        for _ in range(2):
            assert suggest(editor, form_data(pages["edited"]))[1]["ok"] is True
        response, payload = suggest(editor, form_data(pages["edited"]))

    assert response.status_code == 429
    assert payload["ok"] is False
    assert "limit of 2 calls a minute" in payload["message"]


def test_get_is_not_allowed(pages, editor):
    assert logged_in(editor).get(reverse(URL)).status_code == 405


def test_a_page_the_editor_may_not_edit_403(pages):
    user = make_editor("ai-only", pages=False)
    response, payload = suggest(user, form_data(pages["edited"]))
    assert response.status_code == 403
    assert payload["message"] == "You do not have permission to edit this page."


def test_an_index_not_built_yet_says_so(editor):
    home = only_site("unbuilt-home", hostname="a.example").root_page
    page = add_article(home, "Lonely", "Nothing indexed yet.")
    assert ArticlePage.vector_index.check_state() is None
    _, payload = suggest(editor, form_data(page))
    assert payload["ok"] is False
    assert "has not been built yet" in payload["message"]


# -- the panels ------------------------------------------------------------------------


def test_the_panels_are_shown_only_with_the_permission(pages, editor):
    url = reverse("wagtailadmin_pages:edit", args=[pages["edited"].pk])
    shown = logged_in(editor).get(url).content.decode()
    assert "Suggest related pages" in shown
    assert "Check for similar published pages" in shown
    assert 'data-controller="wvi-similar-pages"' in shown
    assert "similar-pages-controller.js" in shown

    hidden = logged_in(editor_user("plain-editor", ai=False)).get(url).content.decode()
    assert "Suggest related pages" not in hidden
    assert "Check for similar published pages" not in hidden
    assert 'id="id_related_pages-OPEN_MODAL"' in hidden  # The list itself stays.


def test_the_create_view_shows_the_panels(pages, editor):
    url = reverse(
        "wagtailadmin_pages:add",
        args=["testapp", "articlepage", pages["home"].pk],
    )
    shown = logged_in(editor).get(url).content.decode()
    assert "Suggest related pages" in shown
    assert "wvi-content-type" in shown


def test_a_panel_on_a_model_without_a_vector_index_is_refused():
    with pytest.raises(ImproperlyConfigured, match="no vector index"):
        AlreadyPublishedPanel().bind_to_model(Page)
    with pytest.raises(ImproperlyConfigured, match="no vector index"):
        RelatedPagesPanel("related_pages").bind_to_model(Page)
    from tests.testapp.models import Book  # Indexed, but not a page.

    with pytest.raises(ImproperlyConfigured, match="page models only"):
        AlreadyPublishedPanel().bind_to_model(Book)


# -- the index API the panels use ---------------------------------------------------


def test_similar_results_embed_the_object_as_it_is_now_on_request(pages):
    index = ArticlePage.vector_index
    edited = pages["edited"]
    edited.title = "Bread at home"
    edited.body = "<p>Flour, water and yeast, baked in a hot oven.</p>"  # Unsaved.

    site = pages["site"]
    stored = index.similar_results(edited, 3, site=site)
    current = index.similar_results(edited, 3, stored=False, site=site)

    assert stored[0].object == pages["close"]  # What the index holds for it.
    assert current[0].object == pages["bread"]
    assert current[0].score >= current[1].score >= current[2].score
    for results in (stored, current):
        assert edited not in [result.object for result in results]


def test_similar_results_leave_out_what_is_excluded(pages):
    index = ArticlePage.vector_index
    draft = ArticlePage(title="Tomatoes", body="<p>Tomatoes need sun and water.</p>")
    chosen = Page.objects.get(pk=pages["close"].pk)  # Not specific: still left out.

    found = index.similar_results(draft, 10, stored=False, exclude=[chosen])

    assert pages["close"] not in [result.object for result in found]
    assert pages["edited"] in [result.object for result in found]
    assert index.find_similar(pages["edited"], limit=10) == [
        result.object for result in index.similar_results(pages["edited"], 10)
    ]
