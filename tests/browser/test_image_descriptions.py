"""An editor describes an image with AI in Wagtail's image editor (Chromium)."""

import re

import pytest
from django.test import override_settings

from tests.utils import chat_backend_settings, make_editor, make_image

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

REPLY = "A red square on a white background."


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def image():
    return make_image(size=(400, 300), description="A blue square")


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


@pytest.fixture
def open_image(page, live_server, log_in):
    """``open_image(username, image)``: log in, open the image's edit view."""

    def open_image(username, image):
        log_in(username)
        page.goto(f"{live_server.url}/admin/images/{image.pk}/")

    return open_image


def test_describe_try_again_and_use(
    page, live_server, open_image, vision, image, screenshots
):
    make_editor("editor", pages=False, images=True)
    open_image("editor", image)
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
    page, live_server, open_image, vision, image
):
    make_editor("editor", pages=False, images=True)
    vision.fail_always("500")
    open_image("editor", image)
    page.get_by_role("button", name="Describe with AI").click()
    status = page.locator(".wvi-image-description__status.error-message")
    status.wait_for()
    assert status.inner_text().startswith("The description could not be made: ")
    assert page.locator(".wvi-image-description__panel").is_hidden()
    assert page.input_value("#id_description") == "A blue square"


def test_model_output_is_shown_as_text(page, live_server, open_image, vision, image):
    make_editor("editor", pages=False, images=True)
    vision.state.reply = "<img src=x onerror=\"document.title='pwned'\"> A square."
    open_image("editor", image)
    page.get_by_role("button", name="Describe with AI").click()
    suggestion = page.locator(".wvi-image-description__suggestion")
    suggestion.wait_for()
    assert "<img src=x" in suggestion.inner_text()
    assert page.locator(".wvi-image-description img").count() == 0
    assert page.title() != "pwned"


def test_no_button_without_the_permission(page, live_server, open_image, vision, image):
    make_editor("plain", ai=False, pages=False, images=True)
    with page.expect_response(lambda r: "/describe/status/" in r.url) as status:
        open_image("plain", image)
    assert status.value.json() == {"ok": True, "available": False}
    page.locator("#id_description").wait_for()
    assert page.get_by_role("button", name="Describe with AI").count() == 0
