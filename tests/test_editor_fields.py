"""Field suggestions (``AIFieldPanel``): what the endpoint sends to the
provider (the unsaved content, the bound, the language), what it records,
what it refuses, and the prompts (defaults, a site's own, validation)."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.urls import reverse
from wagtail.models import Locale
from wagtail.test.utils.form_data import inline_formset, nested_form_data, rich_text

from tests.testapp.models import ArticlePage
from tests.utils import (
    ECHO_CHAT,
    chat_backend_settings,
    chat_requests,
    exhaust_site_budget,
    logged_in,
    make_editor,
    make_user,
    only_site,
)
from wagtail_vector_index import editor_prompts
from wagtail_vector_index.models import AISettings, AIUsageRecord
from wagtail_vector_index.panels import AIFieldPanel

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_ledger")]

URL = reverse("wagtail_vector_index:field_suggestions")
REPLY = ["Tomatoes in a small garden", "Sun, water and soil", "A tomato year"]


@pytest.fixture
def chat(provider):
    provider.state.reply = json.dumps(REPLY)
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {
                "default": chat_backend_settings(provider),
                "writer": chat_backend_settings(provider, model="openai/test-writer"),
                "offline": {"CLASS": ECHO_CHAT, "CONFIG": {}},
            },
        }
    ):
        yield provider


@pytest.fixture
def site():
    return only_site("fields-home")


@pytest.fixture
def article(site):
    return site.root_page.add_child(
        instance=ArticlePage(
            title="Saved title", body="<p>Saved body.</p>", summary="Saved summary"
        )
    )


def editor_with(*, ai=True, pages=True, username="page-editor"):
    """An editor of the site's pages, with or without ``use_ai_in_editor``."""
    return make_editor(username, ai=ai, pages=pages)


@pytest.fixture
def ai_editor(site):
    return editor_with()


def form_data(page=None, *, parent=None, field="title", **values):
    """The page edit form as the browser posts it, with our parameters."""
    data = nested_form_data(
        {
            "title": values.get("title", "Unsaved title about tomatoes"),
            "slug": values.get("slug", "tomatoes"),
            "intro": values.get("intro", "An unsaved introduction."),
            "body": rich_text(
                values.get("body", "<p>Tomatoes need <b>sun</b> and water.</p>")
            ),
            "summary": values.get("summary", ""),
            "seo_title": "",
            "search_description": values.get("search_description", ""),
            "comments": inline_formset([]),
        }
    )
    data.update(
        {
            "wvi-field": field,
            "wvi-model": "testapp.articlepage",
            "wvi-object": "" if page is None else str(page.pk),
            "wvi-parent": "" if parent is None else str(parent.pk),
        }
    )
    return data


def sent_messages(provider):
    return chat_requests(provider)[-1].json["messages"]


def test_alternatives_from_the_unsaved_content(chat, article, ai_editor):
    response = logged_in(ai_editor).post(URL, form_data(article))
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "alternatives": REPLY,
        "prompt": "title",
        "max_length": 255,
        "language": "English",
    }
    system, user = sent_messages(chat)
    assert system["content"] == editor_prompts.SYSTEM_PROMPT.format(count=3)
    prompt = user["content"]
    # The unsaved values, the rich text as text; nothing saved is sent.
    assert "Unsaved title about tomatoes" in prompt
    assert "An unsaved introduction." in prompt
    assert "Tomatoes need sun and water." in prompt
    assert "<b>" not in prompt
    assert "Saved" not in prompt
    assert "at most 255 characters" in prompt
    assert "in English" in prompt
    assert "the field “Title”" in prompt
    # Nothing was saved either.
    article.refresh_from_db()
    assert article.title == "Saved title"


def test_each_call_is_in_the_ledger_under_the_prompt_and_editor(
    chat, article, ai_editor, site
):
    client = logged_in(ai_editor)
    client.post(URL, form_data(article))
    client.post(URL, form_data(article, field="search_description"))
    records = AIUsageRecord.objects.order_by("pk")
    assert [(r.feature, r.user, r.site, r.alias) for r in records] == [
        ("editor: title", ai_editor, site, "default"),
        ("editor: search_description", ai_editor, site, "default"),
    ]
    assert all(r.total_tokens > 0 for r in records)


def test_a_text_field_without_max_length_gets_the_prompts_bound(
    chat, article, ai_editor
):
    chat.state.reply = json.dumps(["x" * 400, "Short and sweet"])
    response = logged_in(ai_editor).post(
        URL, form_data(article, field="search_description")
    )
    payload = response.json()
    assert payload["max_length"] == 160
    assert "at most 160 characters" in sent_messages(chat)[1]["content"]
    assert [len(a) for a in payload["alternatives"]] == [160, 15]


def test_a_page_in_another_locale_is_asked_for_in_its_language(chat, site, ai_editor):
    french = Locale.objects.get_or_create(language_code="fr")[0]
    page = site.root_page.add_child(
        instance=ArticlePage(title="Tomates", slug="tomates", locale=french)
    )
    response = logged_in(ai_editor).post(URL, form_data(page, title="Les tomates"))
    assert response.json()["language"] == "French"
    assert "in French" in sent_messages(chat)[1]["content"]


def test_a_new_page_is_asked_for_with_its_parent(chat, site, ai_editor):
    response = logged_in(ai_editor).post(URL, form_data(parent=site.root_page))
    assert response.json()["ok"] is True
    assert "Unsaved title about tomatoes" in sent_messages(chat)[1]["content"]
    assert not ArticlePage.objects.exists()


def test_replies_are_cleaned_deduplicated_and_bounded(chat, article, ai_editor):
    chat.state.reply = (
        'Here are three titles:\n1. “Tomatoes at home”\n2. "tomatoes at home"\n'
        "3) Sun for tomatoes\n- \n4. <img src=x onerror=alert(1)>"
    )
    payload = logged_in(ai_editor).post(URL, form_data(article)).json()
    # Returned as data (the browser writes it as text), never as markup.
    assert payload["alternatives"] == [
        "Tomatoes at home",
        "Sun for tomatoes",
        "<img src=x onerror=alert(1)>",
    ]


def test_a_reply_without_suggestions_says_so(chat, article, ai_editor):
    chat.state.reply = "```\n```"
    response = logged_in(ai_editor).post(URL, form_data(article))
    assert response.json() == {
        "ok": False,
        "message": "The AI gave no usable suggestion. Try again.",
    }


# -- refusals --------------------------------------------------------------------


def test_without_the_permission_403_and_no_call(chat, article, site):
    user = editor_with(ai=False, username="no-ai")
    response = logged_in(user).post(URL, form_data(article))
    assert response.status_code == 403
    assert response.json()["ok"] is False
    assert chat.requests == []


def test_the_page_must_be_editable_by_the_editor(chat, article, site):
    user = editor_with(pages=False, username="no-pages")
    response = logged_in(user).post(URL, form_data(article))
    assert response.status_code == 403
    assert response.json() == {
        "ok": False,
        "message": "You cannot edit this page or object.",
    }
    assert chat.requests == []


def test_get_is_not_allowed(chat, ai_editor):
    assert logged_in(ai_editor).get(URL).status_code == 405


def test_csrf_is_checked(chat, article, ai_editor):
    client = logged_in(ai_editor, enforce_csrf_checks=True)
    assert client.post(URL, form_data(article)).status_code == 403
    assert chat.requests == []


def test_a_field_without_the_panel_is_refused(chat, article, ai_editor):
    response = logged_in(ai_editor).post(URL, form_data(article, field="intro"))
    assert response.status_code == 400
    assert response.json()["message"] == "This field does not offer AI suggestions."
    response = logged_in(ai_editor).post(
        URL, {**form_data(article), "wvi-model": "auth.user"}
    )
    assert response.status_code == 403
    assert chat.requests == []


def test_the_rate_limit_applies(chat, article, ai_editor, settings):
    settings.WAGTAIL_VECTOR_INDEX = {
        **settings.WAGTAIL_VECTOR_INDEX,
        "TEST_PAGES_RATE_LIMIT": 1,
    }
    client = logged_in(ai_editor)
    assert client.post(URL, form_data(article)).json()["ok"] is True
    response = client.post(URL, form_data(article))
    assert response.status_code == 429
    assert response.json()["message"].startswith("You have reached the limit of 1 call")
    assert len(chat_requests(chat)) == 1


def test_an_exhausted_budget_is_shown_and_nothing_is_sent(
    chat, article, ai_editor, site
):
    exhaust_site_budget(site)
    response = logged_in(ai_editor).post(URL, form_data(article))
    assert response.status_code == 200
    message = response.json()["message"]
    assert response.json()["ok"] is False
    assert message.startswith("The monthly AI budget of site localhost is used up")
    assert chat.requests == []


def test_a_provider_failure_is_shown(chat, article, ai_editor):
    chat.fail("500")
    response = logged_in(ai_editor).post(URL, form_data(article))
    payload = response.json()
    assert response.status_code == 200
    assert payload["ok"] is False
    assert payload["message"]
    assert "sk-test" not in payload["message"]
    record = AIUsageRecord.objects.get()
    assert (record.feature, record.user, record.succeeded) == (
        "editor: title",
        ai_editor,
        False,
    )


# -- prompts ---------------------------------------------------------------------


def test_a_site_prompt_with_its_own_alias(chat, article, ai_editor, site):
    # The summary's panel asks for "teaser", which only the site defines.
    response = logged_in(ai_editor).post(URL, form_data(article, field="summary"))
    assert response.status_code == 400
    assert "There is no editor prompt named “teaser”" in response.json()["message"]
    assert chat.requests == []

    settings = AISettings.for_site(site)
    settings.editor_prompts = {
        "teaser": {
            "text": "Tease {field} ({max_length}, {language}): {content}",
            "alias": "writer",
        }
    }
    settings.save()
    response = logged_in(ai_editor).post(URL, form_data(article, field="summary"))
    assert response.json()["alternatives"] == REPLY[:2]  # alternatives=2
    request = chat_requests(chat)[-1].json
    assert request["model"] == "test-writer"
    assert request["messages"][1]["content"].startswith(
        "Tease Summary (300, English): Unsaved title about tomatoes\n"
    )
    assert AIUsageRecord.objects.get().feature == "editor: teaser"


def test_a_site_changes_a_builtin_prompt(chat, article, ai_editor, site):
    settings = AISettings.for_site(site)
    settings.editor_prompts = {"title": {"text": "Name it, {language}: {content}"}}
    settings.save()
    logged_in(ai_editor).post(URL, form_data(article))
    assert sent_messages(chat)[1]["content"].startswith("Name it, English: Unsaved")


def test_the_offline_echo_backend_gives_readable_alternatives(
    chat, article, ai_editor, site
):
    settings = AISettings.for_site(site)
    settings.editor_prompts = {"title": {"alias": "offline"}}
    settings.save()
    payload = logged_in(ai_editor).post(URL, form_data(article)).json()
    assert payload["alternatives"] == [
        "[offline echo] Unsaved title about tomatoes",
        "[offline echo] An unsaved introduction",
        "[offline echo] Tomatoes need sun and water",
    ]


@pytest.mark.parametrize(
    "text, problem",
    [
        ("Write {title}", "Unknown placeholder {title}."),
        ("Write {content.__class__}", "Unknown placeholder {content.__class__}."),
        ("Write {content!r}", "Unknown placeholder {content!r}."),
        ("Write {max_length:>10}", "Unknown placeholder {max_length:>10}."),
        ("Write {}", "Empty braces {} are not a placeholder."),
        ("Write {content", "The braces do not match"),
        ("Write content}", "The braces do not match"),
    ],
)
def test_bad_placeholders_are_refused_by_name(text, problem):
    with pytest.raises(Exception) as caught:
        editor_prompts.validate_text(text)
    assert problem in caught.value.messages[0]


def test_rendering_fills_placeholders_as_text():
    assert (
        editor_prompts.render(
            "{{literal}} {content} in {language}",
            {"content": "{language} stays", "language": "French"},
        )
        == "{literal} {language} stays in French"
    )


def test_the_builtin_prompts_are_valid():
    for prompt in editor_prompts.BUILTIN_PROMPTS.values():
        editor_prompts.validate_text(str(prompt.text))


def test_alternatives_is_bounded():
    with pytest.raises(ValueError, match="alternatives must be an integer"):
        AIFieldPanel("title", alternatives=0)


# -- the panel in the editor -------------------------------------------------------


def test_the_button_is_shown_only_with_the_permission(chat, article, site):
    edit = reverse("wagtailadmin_pages:edit", args=[article.pk])
    with_ai = logged_in(editor_with(username="with-ai")).get(edit).content.decode()
    assert with_ai.count('data-controller="wvi-field-suggestions"') == 3
    assert "wagtail_vector_index/js/field-suggestions-controller.js" in with_ai
    assert '"wvi-model": "testapp.articlepage"' in with_ai.replace("&quot;", '"')

    without = logged_in(editor_with(ai=False, username="without-ai")).get(edit)
    assert without.status_code == 200
    assert "wvi-field-suggestions" not in without.content.decode()


def inline_handler():
    """``ArticlePage``'s related pages inline, with an ``AIFieldPanel`` inside."""
    from wagtail.admin.panels import InlinePanel, ObjectList

    return ObjectList(
        [InlinePanel("related_pages", panels=[AIFieldPanel("page")])]
    ).bind_to_model(ArticlePage)


def test_no_button_in_an_inline_panels_child_forms(chat, article, site, rf):
    handler = inline_handler()
    request = rf.get("/admin/")
    request.user = editor_with(username="with-ai")
    form = handler.get_form_class()(instance=article, for_user=request.user)

    html = handler.get_bound_panel(
        instance=article, request=request, form=form
    ).render_html()

    assert 'id="id_related_pages-__prefix__-page"' in html  # The child's field.
    assert "wvi-field-suggestions" not in html


def test_the_check_warns_of_a_panel_inside_an_inline_panel(monkeypatch):
    from django.apps import apps

    from wagtail_vector_index import checks

    handler = inline_handler()
    monkeypatch.setattr(apps, "get_models", lambda: [ArticlePage])
    monkeypatch.setattr(ArticlePage, "get_edit_handler", lambda: handler)

    messages = checks.check_ai_field_panels()

    assert [m.id for m in messages] == ["wagtail_vector_index.W022"]
    assert "inside the InlinePanel 'related_pages' of testapp.ArticlePage" in (
        messages[0].msg
    )
    # The panel is not a field of the page: the other checks leave it alone.
    assert list(checks._ai_field_panels()) == []


def test_the_project_has_no_panel_inside_an_inline_panel():
    from wagtail_vector_index import checks

    assert checks.check_ai_field_panels() == []
    assert {(m._meta.label, p.field_name) for m, p in checks._ai_field_panels()} >= {
        ("testapp.ArticlePage", "title"),
        ("testapp.Book", "title"),
    }


# -- the prompts in Settings › AI settings ----------------------------------------


def settings_url(site):
    return f"/admin/settings/wagtail_vector_index/aisettings/{site.pk}/"


@pytest.fixture
def boss(site):
    return make_user("boss", superuser=True)


def test_the_settings_show_the_builtin_prompts_and_rows_for_new_ones(chat, site, boss):
    settings = AISettings.for_site(site)
    settings.editor_prompts = {
        "title": {"alias": "gone"},
        "teaser": {"text": "Tease: {content}", "alias": "writer"},
    }
    settings.save()
    html = logged_in(boss).get(settings_url(site)).content.decode()
    assert "Editor prompts" in html
    assert "Prompt “title”" in html and "Prompt “search_description”" in html
    # The default text is shown (escaped), not put into the field.
    assert "Write a title for the field “{field}”" in html
    assert "Write <code>{{</code> and <code>}}</code> for a brace itself." in html
    assert html.count('name="prompt__builtin__title__text"') == 1
    assert "The chat backend “gone” chosen before is no longer configured" in html
    assert 'value="teaser"' in html
    assert 'name="prompt__custom__0__delete"' in html
    # One row per stored prompt plus two blank ones.
    assert 'name="prompt__custom__2__name"' in html
    assert 'name="prompt__custom__3__name"' not in html
    # Only configured chat aliases are offered.
    assert '<option value="writer">writer</option>' in html
    assert 'value="gone"' not in html


def test_the_settings_save_prompts(chat, site, boss):
    response = logged_in(boss).post(
        settings_url(site),
        {
            "prompt__builtin__title__text": "Title, {language}: {content}",
            "prompt__builtin__title__alias": "writer",
            # Left as the default: not stored (translations keep applying).
            "prompt__builtin__search_description__text": str(
                editor_prompts.BUILTIN_PROMPTS["search_description"].text
            ),
            "prompt__builtin__search_description__alias": "",
            "prompt__custom__0__name": "teaser",
            "prompt__custom__0__text": "Tease {field}: {content}",
            "prompt__custom__0__alias": "offline",
            "prompt__custom__1__name": "",
            "prompt__custom__1__text": "",
        },
    )
    assert response.status_code == 302
    assert AISettings.objects.get(site=site).editor_prompts == {
        "title": {"text": "Title, {language}: {content}", "alias": "writer"},
        "teaser": {"text": "Tease {field}: {content}", "alias": "offline"},
    }
    prompt = editor_prompts.get_prompt("teaser", site)
    assert (prompt.alias, prompt.builtin) == ("offline", False)

    # Deleting a prompt.
    response = logged_in(boss).post(
        settings_url(site),
        {
            "prompt__custom__0__name": "teaser",
            "prompt__custom__0__text": "Tease {field}: {content}",
            "prompt__custom__0__delete": "on",
        },
    )
    assert response.status_code == 302
    assert AISettings.objects.get(site=site).editor_prompts == {}


@pytest.mark.parametrize(
    "fields, error_field, message",
    [
        (
            {"prompt__builtin__title__text": "A title from {body}"},
            "prompt__builtin__title__text",
            "Unknown placeholder {body}. Known placeholders: {content}, {field}, "
            "{max_length}, {language}.",
        ),
        (
            {"prompt__builtin__title__text": "A title from {content"},
            "prompt__builtin__title__text",
            "The braces do not match",
        ),
        (
            {"prompt__builtin__title__alias": "nowhere"},
            "prompt__builtin__title__alias",
            "Select a valid choice. nowhere is not one of the available choices.",
        ),
        (
            {"prompt__custom__0__name": "a teaser!", "prompt__custom__0__text": "x"},
            "prompt__custom__0__name",
            "Enter a valid “slug”",
        ),
        (
            {"prompt__custom__0__name": "title", "prompt__custom__0__text": "x"},
            "prompt__custom__0__name",
            "There is already a prompt named “title”",
        ),
        (
            {"prompt__custom__0__name": "teaser"},
            "prompt__custom__0__text",
            "Write the prompt's text.",
        ),
        (
            {"prompt__custom__0__text": "Tease {content}"},
            "prompt__custom__0__name",
            "Give the prompt a name.",
        ),
    ],
)
def test_the_settings_refuse_bad_prompts(
    chat, site, boss, fields, error_field, message
):
    response = logged_in(boss).post(settings_url(site), fields)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors[error_field])
    assert AISettings.for_site(site).editor_prompts == {}


def test_an_unreadable_form_is_refused(chat, article, ai_editor):
    response = logged_in(ai_editor).post(
        URL, {**form_data(article), "body": "not Draftail's JSON"}
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("The content of the form could")
    assert chat.requests == []


def test_a_model_that_is_not_a_page_uses_the_requests_site(chat, site, ai_editor):
    from tests.testapp.models import Book

    book = Book.objects.create(title="Old title", blurb="Saved blurb")
    data = {
        "title": "Unsaved book title",
        "blurb": "A blurb about tomatoes.",
        "wvi-field": "title",
        "wvi-model": "testapp.book",
        "wvi-object": str(book.pk),
    }
    # The editor of pages may not change books.
    assert logged_in(ai_editor).post(URL, data).status_code == 403
    book_editor = editor_with(pages=False, username="book-editor")
    book_editor.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="testapp", codename="change_book"
        )
    )
    response = logged_in(book_editor).post(URL, data)
    assert response.json()["ok"] is True
    prompt = sent_messages(chat)[1]["content"]
    assert "Unsaved book title\nA blurb about tomatoes." in prompt
    assert "in English" in prompt
    record = AIUsageRecord.objects.get()
    assert (record.site, record.user) == (site, book_editor)


# -- system checks -------------------------------------------------------------------


def test_the_check_warns_of_a_prompt_no_site_defines(site):
    from django.core import checks

    from wagtail_vector_index.checks import check_ai_field_panel_prompts

    # A database check: run only when the checks may read the database
    # (Django 6 hands every check the databases, database checks only
    # with --database).
    assert checks.Tags.database in check_ai_field_panel_prompts.tags
    assert check_ai_field_panel_prompts(databases=None) == []
    messages = check_ai_field_panel_prompts(databases=["default"])
    assert [(m.id, m.obj) for m in messages] == [
        ("wagtail_vector_index.W021", ArticlePage)
    ]
    assert 'testapp.ArticlePage.summary asks for the prompt "teaser"' in messages[0].msg

    settings = AISettings.for_site(site)
    settings.editor_prompts = {"teaser": {"text": "Tease: {content}"}}
    settings.save()
    assert check_ai_field_panel_prompts(databases=["default"]) == []


def test_manage_py_check_without_database_reads_no_prompts():
    from django.core.management import call_command

    # No database access allowed here: the prompt check must not run.
    call_command("check", "wagtail_vector_index", tag=["wagtail_vector_index"])


def test_the_check_warns_of_a_field_that_is_not_plain_text(monkeypatch):
    from wagtail_vector_index import checks

    panel = AIFieldPanel("body").bind_to_model(ArticlePage)
    monkeypatch.setattr(
        checks, "_panels_with_ai_fields", lambda: [(ArticlePage, panel, None)]
    )
    messages = checks.check_ai_field_panels()
    assert [m.id for m in messages] == ["wagtail_vector_index.W020"]
    assert "RichTextField is neither" in messages[0].msg
