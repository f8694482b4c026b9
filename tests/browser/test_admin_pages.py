"""An editor uses the admin in Chromium: site temperature, chat, embeddings."""

import re

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import override_settings
from wagtail.models import GroupSitePermission, Page, Site

from tests.providers import DEFAULT_REPLY
from tests.utils import PASSWORD, chat_backend_settings, root_page

pytestmark = [
    pytest.mark.browser,
    # Transactional (the live server is another thread); serialized_rollback
    # restores the root page and locale that Wagtail's migrations create.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ECHO = "wagtail_vector_index.ai_utils.backends.offline"


@pytest.fixture
def sites():
    root = root_page()
    home_a = root.add_child(instance=Page(title="Site A", slug="site-a"))
    home_b = root.add_child(instance=Page(title="Site B", slug="site-b"))
    Site.objects.all().delete()
    site_a = Site.objects.create(
        hostname="localhost", port=80, root_page=home_a, is_default_site=True
    )
    site_b = Site.objects.create(hostname="b.example", port=80, root_page=home_b)
    return site_a, site_b


@pytest.fixture
def editor(sites):
    site_a, _ = sites
    group = Group.objects.create(name="AI editors")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="use_ai_test_pages"),
    )
    GroupSitePermission.objects.create(
        group=group,
        site=site_a,
        permission=Permission.objects.get(codename="change_aisettings"),
    )
    user = User.objects.create_user("editor", "editor@example.com", PASSWORD)
    user.groups.add(group)
    return user


@pytest.fixture
def backends(provider):
    provider.state.chunk_delay = 0.15
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {"default": chat_backend_settings(provider)},
            "EMBEDDING_BACKENDS": {
                "default": {
                    "CLASS": f"{ECHO}.HashingEmbeddingBackend",
                    "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": 256},
                }
            },
        }
    ):
        yield provider


def test_editor_sets_site_temperature_and_watches_the_answer_stream(
    page, live_server, log_in, sites, editor, backends, screenshots
):
    site_a, _ = sites
    log_in("editor")

    # Settings › AI settings for site A: temperature for all chat backends.
    page.goto(
        f"{live_server.url}/admin/settings/wagtail_vector_index/aisettings/{site_a.pk}/"
    )
    page.fill("input[name='chat__all__temperature']", "0.65")
    with page.expect_navigation():
        page.click("button[type=submit]:has-text('Save')")
    assert "updated" in page.locator(".messages").text_content()

    # The chat test page shows the site's value as the effective temperature.
    page.goto(f"{live_server.url}/admin/ai/chat/")
    assert page.input_value("input[name='a-temperature']") == "0.65"
    page.fill("textarea[name=message]", "Say hello from the browser.")
    page.click("[data-wvi-chat-target=send]")

    output = page.locator("[data-wvi-chat-target=output][data-side=a]")
    # Parts arrive one by one: first some of the answer, then all of it.
    page.wait_for_function(
        "([el, full]) => el.textContent.length > 0 && el.textContent.trim() !== full",
        arg=[output.element_handle(), DEFAULT_REPLY],
        timeout=10_000,
    )
    partial = output.text_content()
    page.wait_for_function(
        "([el, full]) => el.textContent.trim() === full",
        arg=[output.element_handle(), DEFAULT_REPLY],
        timeout=10_000,
    )
    assert partial and DEFAULT_REPLY.startswith(partial.strip())
    assert len(partial.strip()) < len(DEFAULT_REPLY)
    stats = page.locator("[data-wvi-chat-target=stats][data-side=a]")
    stats.wait_for(state="visible")
    assert "first token" in stats.text_content().lower()

    (request,) = backends.requests_to("/v1/chat/completions")
    assert request.body["temperature"] == 0.65
    assert request.body["messages"][-1]["content"] == "Say hello from the browser."

    page.set_viewport_size({"width": 1280, "height": 1000})
    stats.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "chat-test-page.png"))


def test_model_output_is_shown_as_text(
    page, live_server, log_in, sites, editor, backends
):
    backends.state.reply = "<img src=x onerror=alert(1)> <b>bold</b>"
    backends.state.chunk_delay = 0
    log_in("editor")
    page.goto(f"{live_server.url}/admin/ai/chat/")
    page.fill("textarea[name=message]", "Reply with HTML.")
    page.click("[data-wvi-chat-target=send]")
    output = page.locator("[data-wvi-chat-target=output][data-side=a]")
    page.wait_for_function(
        "el => el.textContent.includes('bold')", arg=output.element_handle()
    )
    assert output.locator("img, b").count() == 0
    assert "<b>bold</b>" in output.text_content()


def test_embeddings_page_draws_the_grid(
    page, live_server, log_in, sites, editor, backends, screenshots
):
    log_in("editor")
    page.goto(f"{live_server.url}/admin/ai/embeddings/")
    page.fill(
        "textarea[name=texts]",
        "Tomatoes grow in a sunny garden\n"
        "How to grow tomatoes in the garden\n"
        "Telescopes show distant galaxies",
    )
    page.fill("input[name=query], textarea[name=query]", "growing tomatoes")
    page.click("button[type=submit]:has-text('Embed and compare')")
    grid = page.locator("table.wvi-similarity")
    grid.wait_for()
    assert grid.locator("td.wvi-similarity__cell").count() == 9
    ranking = page.locator("table.wvi-ranking tbody tr")
    assert "Telescopes" in ranking.nth(2).text_content()

    page.set_viewport_size({"width": 1280, "height": 1000})
    ranking.last.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "embeddings-test-page.png"))


def test_editor_searches_an_index_from_its_tab(
    page, live_server, log_in, sites, editor, backends, screenshots
):
    from tests.testapp.models import ArticlePage

    site_a, _ = sites
    home = site_a.root_page.specific
    for title, body in [
        ("Growing tomatoes", "Tomatoes need sun, water and rich soil in the garden."),
        ("Watching stars", "A telescope shows planets, stars and distant galaxies."),
        ("Baking bread", "Flour, water, yeast and salt make bread in a hot oven."),
    ]:
        home.add_child(instance=ArticlePage(title=title, body=f"<p>{body}</p>"))
    draft = home.add_child(
        instance=ArticlePage(title="Tomato draft", body="<p>Tomatoes</p>", live=False)
    )
    ArticlePage.vector_index.update()

    log_in("editor")
    page.goto(f"{live_server.url}/admin/ai/embeddings/")
    search_panel = page.locator("#tab-index-search")
    assert search_panel.is_hidden()
    page.click("a[href='#tab-index-search']")
    search_panel.wait_for(state="visible")

    page.select_option("select[name='search-index']", "testapp.articlepage")
    page.fill("[name='search-query']", "growing tomatoes in my garden")
    page.fill("input[name='search-limit']", "3")
    with page.expect_navigation():
        page.click("#tab-index-search button[type=submit]:has-text('Search')")

    # The answer opens on the same tab, with the results ranked.
    rows = page.locator("#tab-index-search table.wvi-ranking tbody tr")
    rows.first.wait_for()
    assert search_panel.is_visible()
    # At most the 3 asked for (a page sharing no word may score below 0).
    assert 0 < rows.count() <= 3
    assert "Growing tomatoes" in rows.first.text_content()
    assert "Tomato draft" not in search_panel.text_content()
    # This editor may not edit pages: no edit link, but the live page's.
    assert rows.first.locator("a", has_text="Growing tomatoes").count() == 0
    live = rows.first.locator("a", has_text="View live")
    assert live.get_attribute("href").endswith("/growing-tomatoes/")
    assert f"/pages/{draft.pk}/" not in search_panel.inner_html()
    summary = search_panel.locator(".wvi-stats")
    assert "testapp.articlepage" in summary.text_content()

    # The admin scrolls its main column, not the page: a viewport tall
    # enough shows the tabs, the form and the results at once.
    page.set_viewport_size({"width": 1280, "height": 1300})
    page.screenshot(path=str(screenshots / "index-search-tab.png"))


def test_editor_checks_the_backends(
    page, live_server, log_in, sites, editor, provider, screenshots
):
    settings = {
        "CHAT_BACKENDS": {
            "default": chat_backend_settings(provider),
            "writer": chat_backend_settings(
                provider, model="openai/test-writer", FALLBACKS=["default"]
            ),
        },
        "EMBEDDING_BACKENDS": {
            "default": {
                "CLASS": f"{ECHO}.HashingEmbeddingBackend",
                "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": 256},
            }
        },
    }
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog), dialog.dismiss()))
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        log_in("editor")
        page.click("#wagtail-sidebar button:has-text('AI')")
        with page.expect_navigation():
            page.click("a:has-text('AI backends')")
        assert not provider.requests
        default = page.locator("[data-wvi-backend='chat:default']")
        assert "present" in default.text_content()

        with page.expect_navigation():
            default.locator("button:has-text('Check')").click()
        result = page.locator("[data-wvi-backend='chat:default'] [role=status]")
        assert re.search(r"OK in \d+ ms", result.text_content())
        assert len(provider.requests) == 1
        page.set_viewport_size({"width": 1280, "height": 800})
        page.screenshot(path=str(screenshots / "ai-backends.png"), full_page=True)

        # A provider message with markup is shown as text.
        provider.state.error_message = (
            'Unknown model <img src=x onerror="alert(1)"> <b>here</b>.'
        )
        provider.fail("400")
        writer = page.locator("[data-wvi-backend='chat:writer']")
        with page.expect_navigation():
            writer.locator("button:has-text('Check')").click()
        result = page.locator("[data-wvi-backend='chat:writer'] [role=status]")
        assert '<img src=x onerror="alert(1)">' in result.text_content()
        assert not page.locator("[data-wvi-backend='chat:writer'] img").count()
        assert not dialogs
        assert len(provider.requests) == 2
