"""An editor describes an image with AI in Wagtail's image editor (Chromium)."""

import io
import re

import PIL.Image
import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.files.images import ImageFile
from django.test import override_settings

from tests.utils import chat_backend_settings

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

REPLY = "A red square on a white background."


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def root_collection():
    from wagtail.models import Collection

    # A transactional test before this one may have flushed it.
    return Collection.get_first_root_node() or Collection.add_root(name="Root")


@pytest.fixture
def image():
    from wagtail.images import get_image_model

    data = io.BytesIO()
    PIL.Image.new("RGB", (400, 300), "red").save(data, "PNG")
    return get_image_model().objects.create(
        title="Red square",
        file=ImageFile(data, name="square.png"),
        collection=root_collection(),
        description="A blue square",
    )


def make_editor(username, *, ai=True):
    from wagtail.models import GroupCollectionPermission

    group = Group.objects.create(name=f"{username} group")
    group.permissions.add(Permission.objects.get(codename="access_admin"))
    if ai:
        group.permissions.add(Permission.objects.get(codename="use_ai_in_editor"))
    for codename in ("add_image", "change_image"):
        GroupCollectionPermission.objects.create(
            group=group,
            collection=root_collection(),
            permission=Permission.objects.get(
                content_type__app_label="wagtailimages", codename=codename
            ),
        )
    user = User.objects.create_user(username, f"{username}@example.com", "pw")
    user.groups.add(group)
    return user


@pytest.fixture
def vision(provider):
    provider.state.reply = REPLY
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {
                "default": chat_backend_settings(
                    provider, model="openai/test-vision", SUPPORTS_VISION=True
                )
            },
        }
    ):
        yield provider


def open_image(page, live_server, username, image):
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/admin/$"))
    page.goto(f"{live_server.url}/admin/images/{image.pk}/")


def test_describe_try_again_and_use(page, live_server, vision, image, screenshots):
    make_editor("editor")
    open_image(page, live_server, "editor", image)
    button = page.get_by_role("button", name="Describe with AI")
    button.wait_for()
    button.click()
    suggestion = page.locator(".wvi-image-description__suggestion")
    suggestion.wait_for()
    assert suggestion.inner_text() == REPLY
    # What would change: the words of the current description that go and
    # those that come.
    assert page.locator(".wvi-image-description__current del").count() >= 1
    assert page.locator(".wvi-image-description__suggestion ins").count() >= 1
    # Shown, not applied.
    assert page.input_value("#id_description") == "A blue square"
    page.locator(".w-field__wrapper", has=page.locator("#id_description")).screenshot(
        path=str(screenshots / "image-description.png")
    )

    vision.state.reply = "A bright red square."
    page.get_by_role("button", name="Try again").click()
    page.wait_for_function(
        "document.querySelector('.wvi-image-description__suggestion')"
        "?.textContent === 'A bright red square.'"
    )
    assert len(vision.requests_to("/v1/chat/completions")) == 2
    page.get_by_role("button", name="Use this").click()
    assert page.input_value("#id_description") == "A bright red square."
    assert page.locator(".wvi-image-description__panel").is_hidden()

    # Saved only with the form, as any edit.
    page.get_by_role("button", name="Save").first.click()
    page.wait_for_url(re.compile(r".*/admin/images/(\?.*)?$"))
    image.refresh_from_db()
    assert image.description == "A bright red square."


def test_a_provider_down_shows_a_message_and_changes_nothing(
    page, live_server, vision, image
):
    make_editor("editor")
    vision.fail_always("500")
    open_image(page, live_server, "editor", image)
    page.get_by_role("button", name="Describe with AI").click()
    status = page.locator(".wvi-image-description__status.error-message")
    status.wait_for()
    assert status.inner_text().startswith("The description could not be made: ")
    assert page.locator(".wvi-image-description__panel").is_hidden()
    assert page.input_value("#id_description") == "A blue square"


def test_model_output_is_shown_as_text(page, live_server, vision, image):
    make_editor("editor")
    vision.state.reply = "<img src=x onerror=\"document.title='pwned'\"> A square."
    open_image(page, live_server, "editor", image)
    page.get_by_role("button", name="Describe with AI").click()
    suggestion = page.locator(".wvi-image-description__suggestion")
    suggestion.wait_for()
    assert "<img src=x" in suggestion.inner_text()
    assert page.locator(".wvi-image-description img").count() == 0
    assert page.title() != "pwned"


def test_no_button_without_the_permission(page, live_server, vision, image):
    make_editor("plain", ai=False)
    with page.expect_response(lambda r: "/describe/status/" in r.url) as status:
        open_image(page, live_server, "plain", image)
    assert status.value.json() == {"ok": True, "available": False}
    page.locator("#id_description").wait_for()
    assert page.get_by_role("button", name="Describe with AI").count() == 0
