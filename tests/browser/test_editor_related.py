"""An editor asks the page editor for related pages and "Already published?"
in Chromium, with the offline embedding backend."""

import re

import pytest
from django.test import override_settings

from tests.testapp.models import ArticlePage
from tests.utils import add_article, make_editor, only_site

pytestmark = [
    pytest.mark.browser,
    # Transactional (the live server is another thread); serialized_rollback
    # restores the root page and locale that Wagtail's migrations create.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

OFFLINE = {
    "EMBEDDING_BACKENDS": {
        "default": {
            "CLASS": "wagtail_vector_index.ai_utils.backends.offline."
            "HashingEmbeddingBackend",
            "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": 256},
        }
    },
}


@pytest.fixture
def pages():
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        home = only_site("home-related").root_page
        found = {
            "edited": add_article(
                home, "Growing tomatoes", "Tomatoes need sun and water."
            ),
            "close": add_article(
                home, "Tomatoes in pots", "Tomatoes in pots need sun, water and soil."
            ),
            "bread": add_article(
                home, "Baking bread", "Flour, water, yeast and an oven."
            ),
        }
        ArticlePage.vector_index.update()
        yield found


def listed(page, mode):
    """The pages the panel in ``mode`` ("related" or "published") lists,
    once it lists some."""
    results = page.locator(
        f"[data-wvi-similar-pages-mode-value={mode}] .wvi-similar-pages__result"
    )
    results.first.wait_for(timeout=15_000)
    return results


def closest(results, title):
    """The first of ``results``, which must be ``title`` with its
    similarity."""
    first = results.first
    assert first.locator(".wvi-similar-pages__title").text_content() == title
    assert re.fullmatch(
        r"\d+% similar",
        first.locator(".wvi-similar-pages__similarity").text_content(),
    )
    return first


@pytest.fixture
def editor():
    return make_editor("editor")


def test_editor_adds_a_suggested_related_page(
    page, live_server, log_in, pages, editor, screenshots
):
    edited, close = pages["edited"], pages["close"]
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        log_in("editor")
        page.goto(f"{live_server.url}/admin/pages/{edited.pk}/edit/")
        page.click("button:has-text('Suggest related pages')")
        results = listed(page, "related")
        first = closest(results, "Tomatoes in pots")
        titles = results.locator(".wvi-similar-pages__title").all_text_contents()
        assert "Growing tomatoes" not in titles  # Never the page itself.
        page.locator("[data-wvi-similar-pages-mode-value=related]").screenshot(
            path=screenshots / "editor-related-pages.png"
        )

        # Nothing changed until the editor clicks "Add".
        assert page.locator("#id_related_pages-TOTAL_FORMS").input_value() == "0"
        first.locator("button:has-text('Add')").click()
        assert page.locator("#id_related_pages-TOTAL_FORMS").input_value() == "1"
        assert page.locator("#id_related_pages-0-page").input_value() == str(close.pk)
        chooser = page.locator("#id_related_pages-0-page-chooser")
        assert "Tomatoes in pots" in chooser.text_content()
        assert first.locator("button:has-text('Added')").is_disabled()

        # Asking again leaves out what is in the list now.
        page.click("button:has-text('Suggest related pages')")
        page.wait_for_function(
            "() => !document.querySelector("
            "'[data-wvi-similar-pages-mode-value=related] .wvi-similar-pages__add')"
            ".textContent.includes('Added')",
            timeout=15_000,
        )
        titles = results.locator(".wvi-similar-pages__title").all_text_contents()
        assert "Tomatoes in pots" not in titles

        with page.expect_navigation():
            page.click("button:has-text('Save draft')")

    draft = ArticlePage.objects.get(pk=edited.pk).get_latest_revision_as_object()
    assert [link.page_id for link in draft.related_pages.all()] == [close.pk]


def test_editor_sees_the_closest_published_page_of_the_unsaved_draft(
    page, live_server, log_in, pages, editor, screenshots
):
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        log_in("editor")
        page.goto(f"{live_server.url}/admin/pages/{pages['edited'].pk}/edit/")
        # Unsaved: the draft is now about bread (the rich text body too).
        page.fill("input[name=title]", "Bread at home")
        body = page.locator("[data-contentpath=body] [contenteditable=true]")
        body.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("Flour, water, yeast and an oven make bread.")
        page.click("button:has-text('Check for similar published pages')")
        results = listed(page, "published")
        first = closest(results, "Baking bread")
        edit = first.locator("a:has-text('Edit')")
        assert edit.get_attribute("href") == (f"/admin/pages/{pages['bread'].pk}/edit/")
        # No "Add" here: this panel only shows.
        assert not first.locator("button:has-text('Add')").count()
        page.locator("[data-wvi-similar-pages-mode-value=published]").screenshot(
            path=screenshots / "editor-already-published.png"
        )


def test_a_refusal_is_shown_in_place_and_changes_nothing(
    page, live_server, log_in, pages, editor
):
    from wagtail_vector_index.models import IndexState

    IndexState.objects.all().delete()  # As if the index was never built.
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        log_in("editor")
        page.goto(f"{live_server.url}/admin/pages/{pages['edited'].pk}/edit/")
        page.click("button:has-text('Suggest related pages')")
        error = page.locator(
            "[data-wvi-similar-pages-mode-value=related] "
            "[data-wvi-similar-pages-target=error]"
        )
        error.wait_for(state="visible", timeout=15_000)
        assert "has not been built yet" in error.text_content()
        assert page.locator("#id_related_pages-TOTAL_FORMS").input_value() == "0"
        assert not page.locator(".wvi-similar-pages__result").count()
