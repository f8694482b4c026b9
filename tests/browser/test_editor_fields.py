"""An editor asks for field suggestions in the page editor (Chromium):
alternatives appear with what would change, the chosen one fills the field,
"Try again" asks again, refusals leave the field as it was."""

import json
import re

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from playwright.sync_api import expect
from wagtail.models import Locale, Site

from tests.testapp.models import ArticlePage
from tests.utils import (
    PASSWORD,
    add_article,
    chat_backend_settings,
    exhaust_site_budget,
    make_editor,
    only_site,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

#: The first call of a process imports LiteLLM (seconds on a busy machine).
WAIT = 20_000
REPLY = ["Tomatoes for small gardens", "Growing tomatoes at home", "A tomato summer"]


@pytest.fixture
def article():
    home = only_site("fields-home").root_page
    return add_article(
        home, "Tomatoes", "Tomatoes need sun, water and rich soil in the garden."
    )


@pytest.fixture
def chat(provider):
    provider.state.reply = json.dumps(REPLY)
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {"default": chat_backend_settings(provider)}
        }
    ):
        yield provider


def open_editor(page, live_server, article):
    page.goto(f"{live_server.url}/admin/pages/{article.pk}/edit/")
    return page.locator('[data-controller="wvi-field-suggestions"]').filter(
        has=page.locator("#id_title")
    )


def prompts(provider):
    return [
        r.json["messages"][1]["content"]
        for r in provider.requests_to("/v1/chat/completions")
    ]


def test_editor_picks_a_suggestion_and_asks_again(
    page, live_server, log_in, article, chat, screenshots
):
    make_editor("editor")
    log_in("editor")
    panel = open_editor(page, live_server, article)
    title = page.locator("#id_title")
    title.fill("Tomatoes unsaved")

    panel.get_by_role("button", name=re.compile("^Suggest")).click()
    items = panel.locator(".wvi-field-suggestion")
    expect(items).to_have_count(3, timeout=WAIT)
    # The unsaved title and body went to the provider, the field is as it was.
    assert "Tomatoes unsaved" in prompts(chat)[0]
    assert "Tomatoes need sun, water and rich soil" in prompts(chat)[0]
    expect(title).to_have_value("Tomatoes unsaved")
    # What would change: "Tomatoes" kept, "unsaved" removed, the rest added.
    first = items.nth(0)
    expect(first.locator("del")).to_have_text("unsaved")
    expect(first.locator("ins").first).to_contain_text("small gardens")
    page.screenshot(path=str(screenshots / "editor-field-suggestions.png"))

    # Try again: a new request, new alternatives.
    chat.state.reply = json.dumps(["Red tomatoes", "Ripe tomatoes", "Sweet tomatoes"])
    panel.get_by_role("button", name="Try again").click()
    expect(items.nth(0)).to_have_attribute(
        "data-alternative", "Red tomatoes", timeout=WAIT
    )
    assert len(prompts(chat)) == 2
    expect(title).to_have_value("Tomatoes unsaved")

    # Choosing one fills the field, and the form knows it changed.
    panel.get_by_role("button", name="Use suggestion 2").click()
    expect(title).to_have_value("Ripe tomatoes")
    expect(items).to_have_count(0)
    expect(panel).to_contain_text("Suggestion applied")

    # Cancel changes nothing.
    panel.get_by_role("button", name=re.compile("^Suggest")).click()
    expect(items).to_have_count(3)
    panel.get_by_role("button", name="Cancel").click()
    expect(items).to_have_count(0)
    expect(title).to_have_value("Ripe tomatoes")

    # Saving keeps the chosen title.
    page.get_by_role("button", name="Save draft").click()
    page.wait_for_url(re.compile(rf".*/admin/pages/{article.pk}/edit/"))
    assert ArticlePage.objects.get(
        pk=article.pk
    ).get_latest_revision_as_object().title == ("Ripe tomatoes")


def test_model_output_is_shown_as_text(page, live_server, log_in, article, chat):
    chat.state.reply = json.dumps(['<img src=x onerror="window.hacked=1">', "Plain"])
    make_editor("editor")
    log_in("editor")
    panel = open_editor(page, live_server, article)
    panel.get_by_role("button", name=re.compile("^Suggest")).click()
    items = panel.locator(".wvi-field-suggestion")
    expect(items).to_have_count(2, timeout=WAIT)
    expect(items.nth(0)).to_contain_text('<img src=x onerror="window.hacked=1">')
    assert panel.locator("img").count() == 0
    assert page.evaluate("window.hacked") is None


def test_a_provider_failure_is_shown_and_the_field_is_untouched(
    page, live_server, log_in, article, chat
):
    make_editor("editor")
    log_in("editor")
    panel = open_editor(page, live_server, article)
    chat.fail("500", times=5)
    panel.get_by_role("button", name=re.compile("^Suggest")).click()
    alert = panel.get_by_role("alert")
    expect(alert).to_be_visible(timeout=WAIT)
    expect(alert).not_to_be_empty()
    expect(panel.locator(".wvi-field-suggestion")).to_have_count(0)
    expect(page.locator("#id_title")).to_have_value("Tomatoes")


def test_an_exhausted_budget_is_shown_and_the_field_is_untouched(
    page, live_server, log_in, article, chat
):
    exhaust_site_budget(Site.objects.get(hostname="localhost"))
    make_editor("editor")
    log_in("editor")
    panel = open_editor(page, live_server, article)
    page.locator("#id_title").fill("Tomatoes unsaved")
    panel.get_by_role("button", name=re.compile("^Suggest")).click()
    alert = panel.get_by_role("alert")
    expect(alert).to_contain_text("monthly AI budget", timeout=WAIT)
    expect(panel.locator(".wvi-field-suggestion")).to_have_count(0)
    expect(page.locator("#id_title")).to_have_value("Tomatoes unsaved")
    assert prompts(chat) == []


def test_without_the_permission_there_is_no_button(
    page, live_server, log_in, article, chat
):
    make_editor("plain", ai=False)
    log_in("plain")
    page.goto(f"{live_server.url}/admin/pages/{article.pk}/edit/")
    expect(page.locator("#id_title")).to_be_visible()
    expect(page.locator('[data-controller="wvi-field-suggestions"]')).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Suggest"))).to_have_count(0)


def test_a_page_in_another_locale_asks_in_its_language(
    page, live_server, log_in, article, chat
):
    french = Locale.objects.get_or_create(language_code="fr")[0]
    tomates = article.get_parent().add_child(
        instance=ArticlePage(title="Les tomates", slug="tomates", locale=french)
    )
    make_editor("editor")
    log_in("editor")
    panel = open_editor(page, live_server, tomates)
    panel.get_by_role("button", name=re.compile("^Suggest")).click()
    expect(panel.locator(".wvi-field-suggestion")).to_have_count(3, timeout=WAIT)
    assert "in French" in prompts(chat)[0]


def test_an_administrator_changes_a_prompt_and_the_editor_gets_it(
    page, live_server, log_in, article, chat, screenshots
):
    from wagtail_vector_index.models import AISettings

    User.objects.create_superuser("boss", "boss@example.com", PASSWORD)
    log_in("boss")
    site = Site.objects.get(is_default_site=True)
    page.goto(
        f"{live_server.url}/admin/settings/wagtail_vector_index/aisettings/{site.pk}/"
    )
    title_text = page.locator('[name="prompt__builtin__title__text"]')
    # A bad placeholder is refused, by name.
    title_text.fill("A title from {body}")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("Unknown placeholder {body}.")).to_be_visible()
    title_text.fill("Title in {language} from: {content}")
    page.locator('[name="prompt__custom__0__name"]').fill("teaser")
    page.locator('[name="prompt__custom__0__text"]').fill("Tease {field}: {content}")
    page.locator('[data-wvi-default-prompt="title"]').scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "editor-prompts-settings.png"))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("updated")).to_be_visible()
    assert AISettings.for_site(site).editor_prompts == {
        "title": {"text": "Title in {language} from: {content}"},
        "teaser": {"text": "Tease {field}: {content}"},
    }

    panel = open_editor(page, live_server, article)
    panel.get_by_role("button", name=re.compile("^Suggest")).click()
    expect(panel.locator(".wvi-field-suggestion")).to_have_count(3, timeout=WAIT)
    assert prompts(chat)[0].startswith("Title in English from: Tomatoes\n")
