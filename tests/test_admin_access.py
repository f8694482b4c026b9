"""The admin test pages' permission, menu, URLs and rate limit."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client, override_settings
from django.urls import reverse
from wagtail import hooks

from tests.utils import (
    ALL_URLS,
    BACKENDS_CHECK_URL,
    BACKENDS_URL,
    CHAT_URL,
    EMBEDDINGS_URL,
    SAVE_URL,
    STREAM_URL,
    backends_settings,
    chat_data,
    chat_requests,
    lines,
    logged_in,
    make_user,
)

pytestmark = pytest.mark.django_db

REPOSITORY = Path(__file__).resolve().parent.parent

# -- permission, menu, URLs ------------------------------------------------


def test_urls_are_under_the_admin():
    assert reverse(CHAT_URL) == "/admin/ai/chat/"
    assert reverse(STREAM_URL) == "/admin/ai/chat/stream/"
    assert reverse(SAVE_URL) == "/admin/ai/chat/save-overrides/"
    assert reverse(EMBEDDINGS_URL) == "/admin/ai/embeddings/"
    assert reverse(BACKENDS_URL) == "/admin/ai/backends/"
    assert reverse(BACKENDS_CHECK_URL) == "/admin/ai/backends/check/"


@pytest.mark.parametrize("name", ALL_URLS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_every_url_is_forbidden_without_the_permission(
    backends, outsider, name, method
):
    client = logged_in(outsider)
    response = getattr(client, method)(reverse(name), chat_data())
    assert response.status_code == 403
    assert not chat_requests(backends)


def test_anonymous_users_are_sent_to_the_login(backends):
    response = Client().get(reverse(CHAT_URL))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_menu_is_hidden_without_the_permission(backends, outsider, editor):
    hidden = logged_in(outsider).get("/admin/").content.decode()
    assert "Chat test" not in hidden
    assert reverse(CHAT_URL) not in hidden
    shown = logged_in(editor).get("/admin/").content.decode()
    assert "Chat test" in shown and "Embeddings test" in shown
    assert "AI backends" in shown and reverse(BACKENDS_URL) in shown
    assert reverse(CHAT_URL) in shown and reverse(EMBEDDINGS_URL) in shown


def test_permission_is_registered_for_the_group_editor(backends):
    registered = Permission.objects.none()
    for hook in hooks.get_hooks("register_permissions"):
        registered = registered | hook()
    assert registered.filter(
        content_type__app_label="wagtail_vector_index", codename="use_ai_test_pages"
    ).exists()
    admin = logged_in(make_user("root", superuser=True))
    group = Group.objects.create(name="AI page testers")
    page = admin.get(reverse("wagtailusers_groups:edit", args=[group.pk]))
    assert "Can use the AI test pages" in page.content.decode()


def test_granting_the_permission_through_a_group(backends):
    group = Group.objects.create(name="AI testers")
    group.permissions.add(
        Permission.objects.get(codename="access_admin"),
        Permission.objects.get(codename="use_ai_test_pages"),
    )
    user = User.objects.create_user("member")
    user.groups.add(group)
    assert logged_in(user).get(reverse(EMBEDDINGS_URL)).status_code == 200


@pytest.mark.parametrize("name", [STREAM_URL, SAVE_URL, BACKENDS_CHECK_URL])
def test_endpoints_are_post_only(backends, editor, name):
    assert logged_in(editor).get(reverse(name)).status_code == 405


def test_importing_the_hooks_and_views_does_not_import_litellm():
    code = (
        "import sys, django\n"
        "django.setup()\n"
        "import wagtail_vector_index.wagtail_hooks\n"
        "import wagtail_vector_index.views.chat\n"
        "import wagtail_vector_index.views.embeddings\n"
        "import wagtail_vector_index.views.backends\n"
        "from django.urls import reverse\n"
        "reverse('wagtail_vector_index:chat')\n"
        "print('litellm' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPOSITORY,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False", result.stderr


# -- rate limit ----------------------------------------------------------------


def test_rate_limit_refuses_calls_over_the_limit(backends, editor):
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            **backends_settings(backends),
            "TEST_PAGES_RATE_LIMIT": 2,
        }
    ):
        client = logged_in(editor)
        for _ in range(2):
            assert lines(client.post(reverse(STREAM_URL), chat_data()))[-1]["type"] == (
                "done"
            )
        response = client.post(reverse(STREAM_URL), chat_data())
        assert response.status_code == 429
        (line,) = lines(response)
        assert (
            line["type"] == "error" and "limit of 2 calls a minute" in line["message"]
        )
        assert len(chat_requests(backends)) == 2
        # The embeddings page shares the limit.
        page = client.post(
            reverse(EMBEDDINGS_URL), {"alias": "default", "texts": "one\ntwo"}
        )
        assert page.status_code == 429
        assert "limit of 2 calls a minute" in page.content.decode()
        assert not backends.requests_to("/v1/embeddings")
        # Each user has their own budget.
        other = logged_in(make_user("other", "use_ai_test_pages"))
        assert other.post(reverse(STREAM_URL), chat_data()).status_code == 200


def test_rate_limit_holds_across_the_turn_of_a_minute(backends, editor, monkeypatch):
    # The window slides: calls just before the turn of a minute still count
    # just after it (a fixed per-minute window let twice the limit through).
    # The clock is patched (LocMemCache's expiry reads it too), not slept.
    minute = 1_800_000_000 - 1_800_000_000 % 60
    now = [minute]
    monkeypatch.setattr("time.time", lambda: now[0])
    data = {**chat_data(), "a-alias": "offline"}
    with override_settings(
        WAGTAIL_VECTOR_INDEX={**backends_settings(backends), "TEST_PAGES_RATE_LIMIT": 2}
    ):
        client = logged_in(editor)
        statuses = []
        for second in (59.0, 59.5, 60.5, 61.0, 118.0):
            now[0] = minute + second
            statuses.append(client.post(reverse(STREAM_URL), data).status_code)
        assert statuses == [200, 200, 429, 429, 429]
        # A window (plus a second's margin) after the first call, its slot is
        # free again; the embeddings page shares the same slots.
        now[0] = minute + 59.0 + 61
        assert client.post(reverse(STREAM_URL), data).status_code == 200
        page = client.post(
            reverse(EMBEDDINGS_URL), {"alias": "default", "texts": "one\ntwo"}
        )
        assert page.status_code == 429
        assert not backends.requests_to("/v1/embeddings")


def test_rate_limit_zero_means_no_limit(backends, editor):
    with override_settings(
        WAGTAIL_VECTOR_INDEX={**backends_settings(backends), "TEST_PAGES_RATE_LIMIT": 0}
    ):
        client = logged_in(editor)
        for _ in range(25):
            data = {**chat_data(), "a-alias": "offline"}
            assert client.post(reverse(STREAM_URL), data).status_code == 200
