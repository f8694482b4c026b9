"""The admin is translatable: what ``makemessages`` collects, and a made-up
language shown end to end.

The catalogue is made afresh from a copy of the package (the repository is
not touched) with the command translators run (docs/translating.md), so a
string that turns back into a literal fails here: each one is looked up with
the file it must come from, since the same English text may be translated
somewhere else too. ``makemessages`` and ``msgfmt`` need GNU gettext.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import AsyncClient, override_settings
from django.urls import reverse
from django.utils import translation
from django.utils.text import capfirst
from wagtail.models import Site
from wagtail.users.models import UserProfile

from tests.utils import (
    CHAT_URL,
    ECHO_CHAT,
    EMBEDDINGS_URL,
    HASHING_EMBEDDING,
    STREAM_URL,
    chat_backend_settings,
    chat_data,
    logged_in,
    run_async,
)
from wagtail_vector_index import exceptions

REPOSITORY = Path(__file__).resolve().parent.parent
PACKAGE = "wagtail_vector_index"

OFFLINE = {
    "CHAT_BACKENDS": {"default": {"CLASS": ECHO_CHAT, "CONFIG": {}}},
    "EMBEDDING_BACKENDS": {"default": {"CLASS": HASHING_EMBEDDING, "CONFIG": {}}},
}

#: The made-up language of the end-to-end tests, and how it marks every text.
FAKE_LANGUAGE = "xx"
MARK = "[xx] "


def require_gettext(*programs: str) -> None:
    """Fail (not skip: CI must run these tests) without GNU gettext."""
    missing = [name for name in programs if shutil.which(name) is None]
    if missing:
        pytest.fail(
            f"GNU gettext is not installed (missing: {', '.join(missing)}): the "
            "translation tests need it. Install the gettext package "
            "(apt-get install gettext, brew install gettext)."
        )


# -- reading and writing .po files ----------------------------------------------


@dataclass
class Entry:
    """One message of a .po file."""

    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    #: The files it was found in (``views/chat.py``), from the ``#:`` lines.
    files: set[str] = field(default_factory=set)


def _unquote(text: str) -> str:
    # A .po string is a C string literal; for the escapes gettext writes
    # (\\ \" \n \t) a Python string literal reads the same.
    return ast.literal_eval(text)


def read_po(path: Path) -> list[Entry]:
    """The messages of a .po file (the header and obsolete ones left out)."""
    entries: list[Entry] = []
    entry, key = Entry(), None

    def finish() -> None:
        nonlocal entry, key
        if entry.msgid:
            entries.append(entry)
        entry, key = Entry(), None

    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            finish()
        elif line.startswith("#:"):
            entry.files.update(ref.rsplit(":", 1)[0] for ref in line[2:].split())
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            if key in ("msgid", "msgid_plural", "msgctxt"):
                setattr(entry, key, (getattr(entry, key) or "") + _unquote(line))
        else:
            key, _, value = line.partition(" ")
            if key in ("msgid", "msgid_plural", "msgctxt"):
                setattr(entry, key, _unquote(value))
    finish()
    return entries


def _quote(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\t", "\\t")
    )
    return f'"{escaped}"'


def write_fake_catalogue(entries: list[Entry], locale_dir: Path) -> None:
    """A catalogue of :data:`FAKE_LANGUAGE` translating every message as
    itself after :data:`MARK`, compiled with ``msgfmt`` (which checks that
    the placeholders of each translation match its message)."""
    lines = [
        'msgid ""',
        'msgstr ""',
        '"Content-Type: text/plain; charset=UTF-8\\n"',
        f'"Language: {FAKE_LANGUAGE}\\n"',
        '"Plural-Forms: nplurals=2; plural=(n != 1);\\n"',
        "",
    ]
    for entry in entries:
        if "%(" in entry.msgid or (entry.msgid_plural and "%(" in entry.msgid_plural):
            lines.append("#, python-format")
        if entry.msgctxt is not None:
            lines.append(f"msgctxt {_quote(entry.msgctxt)}")
        lines.append(f"msgid {_quote(entry.msgid)}")
        if entry.msgid_plural is None:
            lines.append(f"msgstr {_quote(MARK + entry.msgid)}")
        else:
            lines.append(f"msgid_plural {_quote(entry.msgid_plural)}")
            lines.append(f"msgstr[0] {_quote(MARK + entry.msgid)}")
            lines.append(f"msgstr[1] {_quote(MARK + entry.msgid_plural)}")
        lines.append("")
    messages = locale_dir / FAKE_LANGUAGE / "LC_MESSAGES"
    messages.mkdir(parents=True)
    po = messages / "django.po"
    po.write_text("\n".join(lines), encoding="utf-8")
    subprocess.run(
        ["msgfmt", "--check", "-o", str(messages / "django.mo"), str(po)],  # noqa: S607
        check=True,
        capture_output=True,
    )


class Catalogue:
    """The messages ``makemessages`` found, by the file they come from."""

    def __init__(self, entries: list[Entry]) -> None:
        self.entries = entries

    def messages_from(self, path: str) -> set[str]:
        """Every message (singular and plural) found in ``path``."""
        found = set()
        for entry in self.entries:
            if path in entry.files:
                found.add(entry.msgid)
                if entry.msgid_plural:
                    found.add(entry.msgid_plural)
        return found

    def assert_from(self, text: str, path: str) -> None:
        assert str(text) in self.messages_from(path), (
            f"{str(text)!r} is not in the catalogue as a message of {path}: "
            "is it an untranslated literal?"
        )

    def assert_made_from(self, text: str, path: str, values: dict) -> None:
        """``text`` is one of ``path``'s messages with ``values`` filled in."""
        for message in self.messages_from(path):
            try:
                if message % values == text:
                    return
            except (KeyError, TypeError, ValueError):
                continue
        raise AssertionError(
            f"{text!r} is not made from a message of {path} (placeholders "
            f"{sorted(values)}): is it assembled from untranslated text?"
        )

    def assert_matches(self, text: str, path: str) -> None:
        """``text`` is one of ``path``'s messages, whatever its placeholders
        hold (for many texts at once, such as every system check's)."""
        for message in self.messages_from(path):
            parts = re.split(r"%\(\w+\)[sd]", message)
            pattern = "(.+)".join(re.escape(part) for part in parts)
            if re.fullmatch(pattern, text, re.DOTALL):
                return
        raise AssertionError(
            f"{text!r} matches no message of {path}: is it an untranslated "
            "literal or assembled from untranslated text?"
        )


@pytest.fixture(scope="module")
def catalogue_entries(tmp_path_factory) -> list[Entry]:
    """``makemessages -l en --symlinks`` run in a copy of the package.

    The copy keeps the package's symlinks to the top-level templates/ and
    static/ (copied beside it), as in the repository: ``--symlinks`` is what
    makes ``makemessages`` read the templates.
    """
    require_gettext("xgettext", "msguniq", "msgmerge", "msgattrib")
    root = tmp_path_factory.mktemp("makemessages")
    ignore = shutil.ignore_patterns("__pycache__", "locale")
    for folder in (PACKAGE, "templates", "static"):
        shutil.copytree(
            REPOSITORY / folder, root / folder, symlinks=True, ignore=ignore
        )
    package = root / PACKAGE
    (package / "locale").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(package)
        call_command("makemessages", locale=["en"], symlinks=True, verbosity=0)
    return read_po(package / "locale" / "en" / "LC_MESSAGES" / "django.po")


@pytest.fixture(scope="module")
def catalogue(catalogue_entries) -> Catalogue:
    return Catalogue(catalogue_entries)


@pytest.fixture
def untranslated():
    """Translation off: every gettext call returns its message as written."""
    with translation.override(None):
        yield


# -- the catalogue ------------------------------------------------------------------


def test_the_catalogue_holds_the_templates(catalogue):
    # Read only through the package's templates symlink, with --symlinks.
    catalogue.assert_from(
        "Embed and compare", "templates/wagtail_vector_index/admin/embeddings.html"
    )
    catalogue.assert_from(
        "Offline", "templates/wagtail_vector_index/includes/backend_label.html"
    )


def test_the_catalogue_holds_the_menu_labels(catalogue, untranslated):
    from wagtail_vector_index.wagtail_hooks import register_admin_menu_item

    submenu = register_admin_menu_item()
    items = submenu.menu.initial_menu_items
    assert items
    for item in (submenu, *items):
        catalogue.assert_from(item.label, "wagtail_hooks.py")


@pytest.mark.django_db
def test_the_catalogue_holds_the_ai_settings_form(catalogue, untranslated):
    from wagtail_vector_index.models import AISettings
    from wagtail_vector_index.parameters import ALLOWED_PARAMETERS, SOURCE_LABELS

    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        site = Site.objects.get(is_default_site=True)
        # The form class the settings page uses (Wagtail builds it from the
        # edit handler).
        form_class = AISettings.edit_handler.bind_to_model(AISettings).get_form_class()
        form = form_class(instance=AISettings.for_site(site))
    assert form.fields
    from wagtail_vector_index.ai_settings_form import BUDGET_FIELDS

    for name, form_field in form.fields.items():
        if name in BUDGET_FIELDS:
            # The model's own fields: their verbose names, capitalised.
            verbose_name = AISettings._meta.get_field(name).verbose_name
            catalogue.assert_from(verbose_name, "models.py")
            assert str(form_field.label) == capfirst(verbose_name)
        elif name in form._prompt_fields:
            # The editor prompts' fields.
            catalogue.assert_from(form_field.label, "ai_settings_form.py")
            if form_field.help_text:
                catalogue.assert_from(form_field.help_text, "ai_settings_form.py")
        else:
            catalogue.assert_from(form_field.label, "parameters.py")
    for spec in ALLOWED_PARAMETERS.values():
        catalogue.assert_from(spec.label, "parameters.py")
        catalogue.assert_from(spec.help_text, "parameters.py")
    for label in SOURCE_LABELS.values():
        catalogue.assert_from(label, "parameters.py")
    assert form.override_groups
    for group in form.override_groups:
        catalogue.assert_made_from(
            group.heading, "ai_settings_form.py", {"alias": group.scope}
        )
        if group.description:
            catalogue.assert_from(group.description, "ai_settings_form.py")
    # Validation errors.
    with pytest.raises(ValidationError) as caught:
        ALLOWED_PARAMETERS["temperature"].clean(3)
    catalogue.assert_made_from(
        caught.value.messages[0],
        "parameters.py",
        {"label": "Temperature", "maximum": 2},
    )


def provider_error_classes() -> list[type[exceptions.AIProviderError]]:
    found, pending = [], [exceptions.AIProviderError]
    while pending:
        cls = pending.pop()
        if cls.__module__ == exceptions.__name__:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def test_the_catalogue_holds_the_exception_messages(catalogue, untranslated):
    classes = provider_error_classes()
    assert len(classes) >= 9
    for cls in classes:
        catalogue.assert_from(cls.reason, "exceptions.py")
        values = {"reason": str(cls.reason), "alias": "writer", "model": "gpt-x"}
        error = cls(alias="writer", model_id="gpt-x")
        catalogue.assert_made_from(str(error), "exceptions.py", values)
        error = cls(alias="writer", model_id="gpt-x", detail="cut off")
        catalogue.assert_made_from(
            str(error), "exceptions.py", {**values, "detail": "cut off"}
        )

    error = exceptions.UnknownBackendAliasError("missing", "chat", ["default"])
    inner = str(error).split(": ", 1)[1]
    catalogue.assert_made_from(
        str(error), "exceptions.py", {"alias": "missing", "message": inner}
    )
    catalogue.assert_made_from(inner, "exceptions.py", {"known": '"default"'})


def test_the_catalogue_holds_the_chat_page_scripts_texts(catalogue, untranslated):
    from wagtail_vector_index.views.chat import js_strings

    for text in js_strings().values():
        catalogue.assert_from(text, "views/chat.py")


#: Settings with a mistake for most of the system checks of ``checks.py``,
#: offline backends only (the LiteLLM ones would look their models up).
WRONG_SETTINGS = {
    "CHAT_BACKENDS": {
        "writer": {
            "CLASS": ECHO_CHAT,
            "CONFIG": {
                "MODEL_ID": "",
                "COLOUR": "blue",
                "DEFAULT_PARAMETERS": {"model": "x", "messages": []},
                "TOKEN_LIMIT": -1,
            },
            "EXTRA": 1,
        },
        "embedder": {"CLASS": HASHING_EMBEDDING},
        "missing": {"CLASS": "no.such.Backend"},
        "bare": 3,
        "listed": {"CLASS": ECHO_CHAT, "CONFIG": []},
    },
    "EMBEDDING_BACKENDS": [],
    "STORAGE": "",
    "TEST_PAGES_RATE_LIMIT": -1,
    "SITE_SETTINGS_CACHE_TIMEOUT": "soon",
    "AUTO_UPDATE": "yes",
    "COLOUR": "blue",
}


def test_the_catalogue_holds_the_system_checks(catalogue, untranslated):
    from wagtail_vector_index.checks import check_0_10_settings, check_settings

    with override_settings(WAGTAIL_VECTOR_INDEX=["not", "a", "dict"]):
        (error,) = check_settings()
    assert error.id == "wagtail_vector_index.E001"
    catalogue.assert_made_from(
        error.msg, "checks.py", {"setting": "WAGTAIL_VECTOR_INDEX", "type": "list"}
    )
    catalogue.assert_matches(error.hint, "checks.py")

    with override_settings(WAGTAIL_VECTOR_INDEX=WRONG_SETTINGS):
        messages = check_settings()
    ids = {message.id.rsplit(".", 1)[1] for message in messages}
    assert ids >= {
        *("E002", "E003", "E004", "E005", "E006", "E007", "E009", "E012"),
        *("E013", "E014", "E015", "E016", "W001", "W003"),
    }, ids
    for message in messages:
        catalogue.assert_matches(message.msg, "checks.py")
        catalogue.assert_matches(message.hint, "checks.py")
    (w001,) = [message for message in messages if message.id.endswith("W001")]
    catalogue.assert_made_from(
        w001.hint,
        "checks.py",
        {"configured": "bare, embedder, listed, missing, writer"},
    )

    old_settings = {
        "WAGTAIL_VECTOR_INDEX_STORAGE_PROVIDERS": {
            "default": {"STORAGE_PROVIDER": "wagtail_vector_index.storage.pgvector.X"}
        },
        "WAGTAIL_VECTOR_INDEX_QUERY_PROMPT": "Answer from {context}",
    }
    with override_settings(**old_settings):
        messages = check_0_10_settings()
    assert {message.id.rsplit(".", 1)[1] for message in messages} == {"W005", "W007"}
    for message in messages:
        catalogue.assert_matches(message.msg, "checks.py")
        catalogue.assert_matches(message.hint, "checks.py")


@pytest.mark.parametrize(
    "path", [f"{PACKAGE}/checks.py", f"{PACKAGE}/contrib/pgvector/checks.py"]
)
def test_no_system_check_is_written_as_a_literal(path):
    # Every check, including those the test above cannot easily trigger (the
    # models' checks, pgvector's database check): no message or hint given as
    # a string literal, an f-string or a sum with one.
    def literal(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant | ast.JoinedStr):
            return isinstance(node, ast.JoinedStr) or isinstance(node.value, str)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return literal(node.left) or literal(node.right)
        if isinstance(node, ast.IfExp):
            return literal(node.body) or literal(node.orelse)
        return False

    tree = ast.parse((REPOSITORY / path).read_text(encoding="utf-8"))
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("Error", "Warning")
    ]
    assert calls
    for call in calls:
        texts = [*call.args[:1], *(k.value for k in call.keywords if k.arg == "hint")]
        for text in texts:
            assert not literal(text), (
                f"{path}:{text.lineno}: a system check's text is a literal; "
                "wrap it in gettext"
            )


def test_the_catalogue_holds_the_backend_and_index_messages(catalogue, untranslated):
    from wagtail_vector_index import ai
    from wagtail_vector_index.index import IndexNeedsRebuildError, VectorIndex

    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        backend = ai.get_embedding_backend("default")
        assert backend.offline
        catalogue.assert_made_from(
            backend.display_name,
            "ai_utils/backends/base.py",
            {"alias": "default", "model": backend.config.model_id},
        )

        class Built(VectorIndex):
            # Built with another model than the backend has now.
            name = "built-elsewhere"
            storage = type("Storage", (), {"state": staticmethod(lambda: old)})()

        old = type("State", (), {"model_id": "old-model", "dimensions": 3})()
        with pytest.raises(IndexNeedsRebuildError) as caught:
            Built().check_state()
    catalogue.assert_made_from(
        str(caught.value),
        "index/base.py",
        {
            "index": "built-elsewhere",
            "old_model": "old-model",
            "old_dimensions": 3,
            "model": backend.config.model_id,
            "dimensions": backend.embedding_output_dimensions,
        },
    )


def test_the_catalogue_holds_the_0_10_import_messages(catalogue, untranslated):
    with pytest.raises(ImportError) as caught:
        from wagtail_vector_index.storage.models import Embedding  # noqa: F401
    catalogue.assert_made_from(
        str(caught.value),
        "storage/models.py",
        {
            "name": "wagtail_vector_index.storage.models.Embedding",
            "guide": "docs/upgrading.md",
        },
    )
    with pytest.warns(DeprecationWarning) as warned:
        from wagtail_vector_index.storage.models import EmbeddingField  # noqa: F401
    catalogue.assert_matches(str(warned[0].message), "storage/models.py")
    with pytest.raises(ImportError) as caught:
        from wagtail_vector_index.storage import registry  # noqa: F401
    catalogue.assert_matches(str(caught.value), "storage/__init__.py")


@pytest.mark.django_db
def test_the_catalogue_holds_the_usage_report(catalogue, untranslated):
    from wagtail_vector_index.views.usage_panel import UsageUse
    from wagtail_vector_index.views.usage_report import (
        UsageFilterSet,
        UsageReportView,
    )
    from wagtail_vector_index.wagtail_hooks import register_usage_report_menu_item

    catalogue.assert_from(register_usage_report_menu_item().label, "wagtail_hooks.py")
    report = "views/usage_report.py"
    catalogue.assert_from(UsageReportView.page_title, report)
    for column in UsageReportView.columns:
        catalogue.assert_from(column.label, report)
    for heading in UsageReportView.export_headings.values():
        catalogue.assert_from(heading, report)
    filters = UsageFilterSet()
    for filter_ in filters.filters.values():
        catalogue.assert_from(filter_.label, report)
    catalogue.assert_from(
        dict(filters.form.fields["outcome"].choices)["any-error"], report
    )
    unlimited = UsageUse(used=0, budget=None, own=False, threshold=0.8)
    catalogue.assert_from(unlimited.budget_display, "views/usage_panel.py")
    for text, template in [
        ("Cost and calls per day", "summary.html"),
        ("The figures per day", "summary.html"),
        ("AI usage this month", "dashboard_panel.html"),
        ("Over budget", "budget_cell.html"),
    ]:
        catalogue.assert_from(text, f"templates/wagtail_vector_index/usage/{template}")


def test_the_catalogue_fails_on_a_literal(catalogue):
    # The check itself: a text no gettext call holds is reported.
    with pytest.raises(AssertionError, match="untranslated literal"):
        catalogue.assert_from("Chat test", "exceptions.py")
    with pytest.raises(AssertionError, match="untranslated literal"):
        catalogue.assert_matches("WAGTAIL_VECTOR_INDEX is not right.", "checks.py")


# -- a made-up language, end to end --------------------------------------------------


@pytest.fixture
def fake_language(catalogue_entries, tmp_path, editor):
    """The editor's admin in :data:`FAKE_LANGUAGE`, whose catalogue is the
    fresh one with every message marked."""
    require_gettext("msgfmt")
    write_fake_catalogue(catalogue_entries, tmp_path)
    profile = UserProfile.get_for_user(editor)
    profile.preferred_language = FAKE_LANGUAGE
    profile.save()
    with override_settings(LOCALE_PATHS=[str(tmp_path)]):
        yield editor


def test_a_system_check_in_another_language(catalogue_entries, tmp_path):
    # Made when the checks run, in the active language.
    from wagtail_vector_index.checks import check_settings

    require_gettext("msgfmt")
    write_fake_catalogue(catalogue_entries, tmp_path)
    with (
        override_settings(LOCALE_PATHS=[str(tmp_path)]),
        translation.override(FAKE_LANGUAGE),
        override_settings(WAGTAIL_VECTOR_INDEX=["not", "a", "dict"]),
    ):
        (error,) = check_settings()
    assert error.msg == f"{MARK}WAGTAIL_VECTOR_INDEX must be a dict, not list."
    assert error.hint.startswith(f"{MARK}Set WAGTAIL_VECTOR_INDEX = {{")


@pytest.mark.django_db
def test_the_chat_page_in_another_language(fake_language):
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        response = logged_in(fake_language).get(reverse(CHAT_URL))
    assert response.status_code == 200
    html = response.content.decode()
    for text in (
        "Chat test",  # The page title, and the menu.
        "Embeddings test",  # The menu.
        "System prompt",  # A form label.
        "Compare two parameter sets",
        "Temperature",  # A parameter's label.
        "Send",  # The template.
        "You can make 20 calls a minute from the test pages.",  # A plural.
    ):
        assert f"{MARK}{text}" in html, text
    assert ">System prompt<" not in html
    # The controller's texts, in its strings value.
    strings = json.loads(
        html.split('data-wvi-chat-strings-value="')[1]
        .split('"')[0]
        .replace("&quot;", '"')
    )
    assert strings["stopped"] == f"{MARK}Stopped."
    assert strings["requestFailed"] == f"{MARK}The request failed: %(message)s"


@pytest.mark.django_db
def test_the_embeddings_page_in_another_language(fake_language):
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        response = logged_in(fake_language).post(
            reverse(EMBEDDINGS_URL),
            {"site": "", "alias": "default", "texts": "", "query": ""},
        )
    html = response.content.decode()
    assert f"{MARK}Embeddings test" in html
    assert f"{MARK}Compare texts" in html  # A tab, through _() in a tag.
    assert f"{MARK}Texts" in html  # A panel heading.
    assert f"{MARK}Optional: rank the texts" in html  # A help text.


@pytest.mark.django_db
@pytest.mark.parametrize("server", ["wsgi", "asgi"])
def test_a_streamed_provider_error_in_another_language(provider, fake_language, server):
    # The answer is streamed after the view has returned: its lines must
    # still be in the editor's language.
    provider.fail("401", times=3)
    chat = chat_backend_settings(provider)
    with override_settings(WAGTAIL_VECTOR_INDEX={"CHAT_BACKENDS": {"default": chat}}):
        if server == "wsgi":
            response = logged_in(fake_language).post(reverse(STREAM_URL), chat_data())
            raw = b"".join(response.streaming_content).decode()
        else:

            async def post():
                client = AsyncClient()
                await client.aforce_login(fake_language)
                response = await client.post(reverse(STREAM_URL), chat_data())
                assert response.is_async
                return b"".join(
                    [chunk async for chunk in response.streaming_content]
                ).decode()

            raw = run_async(post)
    (line,) = [json.loads(text) for text in raw.splitlines()]
    assert line["type"] == "error"
    reason = exceptions.AIAuthenticationError.reason
    assert line["message"].startswith(f"{MARK}{MARK}{reason}"), line["message"]
