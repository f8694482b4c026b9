"""Image descriptions: the vision call over real HTTP (what is sent, what is
recorded), the image editor's endpoints, the system checks and
``manage.py describe_images``."""

from __future__ import annotations

import base64
import io
import json

import PIL.Image
import pytest
from django.core.checks import Error, Warning
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.urls import reverse

from tests.utils import (
    ECHO_CHAT,
    chat_backend_settings,
    chat_requests,
    logged_in,
    make_editor,
    make_image,
)
from wagtail_vector_index import image_descriptions
from wagtail_vector_index.ai_utils.backends.base import validate_messages
from wagtail_vector_index.checks import check_settings
from wagtail_vector_index.exceptions import AIVisionNotSupportedError

REPLY = '  "A red square on a white\nbackground."  '
DESCRIBE_URL = "wagtail_vector_index:image_description"
STATUS_URL = "wagtail_vector_index:image_description_status"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def image_editor(username="image-editor", *, ai=True):
    """Admin access, the rights to add and change the images of the root
    collection and (with ``ai``) use_ai_in_editor."""
    return make_editor(username, ai=ai, pages=False, images=True)


def vision_settings(provider, *, vision=True, **extra):
    config = {"SUPPORTS_VISION": True} if vision else {}
    return {
        "CHAT_BACKENDS": {
            "default": chat_backend_settings(provider),
            "vision": chat_backend_settings(
                provider, model="openai/test-vision", **config
            ),
            "offline": {"CLASS": ECHO_CHAT, "CONFIG": {}},
        },
        "IMAGE_DESCRIPTION": {"ALIAS": "vision"},
        **extra,
    }


@pytest.fixture
def vision(provider):
    provider.state.reply = REPLY
    with override_settings(WAGTAIL_VECTOR_INDEX=vision_settings(provider)):
        yield provider


def sent_image(request):
    """The picture of a recorded chat request, decoded, and its prompt."""
    content = request.json["messages"][0]["content"]
    assert [part["type"] for part in content] == ["text", "image_url"]
    url = content[1]["image_url"]["url"]
    header, data = url.split(",", 1)
    return header, base64.b64decode(data), content[0]["text"]


def rendition_bytes(image):
    rendition = image.get_rendition(image_descriptions.rendition_filter(image))
    with rendition.file.open("rb") as file:
        return file.read()


# -- the call ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_editor_endpoint_sends_the_rendition_and_records_the_call(
    vision, empty_ledger
):
    from wagtail.models import Site

    from wagtail_vector_index.models import AIUsageRecord

    image = make_image()
    user = image_editor()
    response = logged_in(user).post(
        reverse(DESCRIBE_URL, args=[image.pk]), {"title": "Unsaved title"}
    )
    assert response.status_code == 200
    answer = response.json()
    assert answer == {
        "ok": True,
        "description": "A red square on a white background.",
        "current": "",
        "offline": False,
        "alias": "vision",
        "model": "openai/test-vision",
    }
    # Nothing is saved: only the editor's "Use this" fills the field.
    image.refresh_from_db()
    assert image.description == ""

    (request,) = chat_requests(vision)
    assert request.json["model"] == "test-vision"
    header, data, prompt = sent_image(request)
    assert header == "data:image/png;base64"
    assert data == rendition_bytes(image)
    with PIL.Image.open(io.BytesIO(data)) as sent:
        assert sent.size == (1024, 576)  # max-1024x1024 of 1600×900
    assert '"Unsaved title"' in prompt
    assert "in English" in prompt
    assert "at most 255 characters" in prompt

    (record,) = AIUsageRecord.objects.all()
    assert record.feature == "image description"
    assert record.user == user
    assert record.site == Site.objects.get(is_default_site=True)
    assert record.alias == "vision"


@pytest.mark.django_db
def test_a_jpeg_is_sent_as_jpeg_and_the_answer_fits_the_field(vision):
    image = make_image(name="photo.jpg", size=(300, 200))
    vision.state.reply = "word " * 200
    description = image_descriptions.describe_image(image)
    assert len(description.text) <= 255
    assert description.text.endswith("…")
    header, data, _prompt = sent_image(chat_requests(vision)[0])
    assert header == "data:image/jpeg;base64"
    assert data == rendition_bytes(image)


@pytest.mark.django_db
def test_the_prompt_is_in_the_sites_language(vision, settings):
    from wagtail.models import Locale, Site

    settings.WAGTAIL_I18N_ENABLED = True
    settings.WAGTAIL_CONTENT_LANGUAGES = [("en", "English"), ("fr", "French")]
    settings.LANGUAGES = [("en", "English"), ("fr", "French")]
    site = Site.objects.get(is_default_site=True)
    french = Locale.objects.create(language_code="fr")
    root = site.root_page
    root.locale = french
    root.save()
    image_descriptions.describe_image(make_image(), site=site)
    _header, _data, prompt = sent_image(chat_requests(vision)[0])
    assert "in French" in prompt


def test_messages_may_carry_image_parts():
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
            ],
        }
    ]
    assert validate_messages(messages) == messages
    with pytest.raises(TypeError, match="must be"):
        validate_messages([{"role": "user", "content": [{"type": "audio"}]}])


@pytest.mark.django_db
def test_any_chat_call_with_an_image_is_refused_by_a_model_that_cannot_see(provider):
    from wagtail_vector_index import ai

    settings = vision_settings(provider)
    settings["CHAT_BACKENDS"]["vision"]["CONFIG"]["SUPPORTS_VISION"] = False
    message = {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
        ],
    }
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        with pytest.raises(AIVisionNotSupportedError, match="cannot take images"):
            ai.get_chat_backend("vision").chat(messages=[message])
    assert chat_requests(provider) == []


def test_cleaning_an_answer():
    assert image_descriptions.clean('"A cat\n on a  mat."', 255) == "A cat on a mat."
    assert image_descriptions.clean("one two three four", 10) == "one two…"
    assert image_descriptions.clean("“A dog.”", 255) == "A dog."


# -- refusals ------------------------------------------------------------------


def assert_refused(user, message, provider):
    """``user`` asks to describe an image: 403 with ``message``, the status
    says there is no button (the script asks on every image edit page: no
    403 to log), and nothing is sent."""
    image = make_image()
    response = logged_in(user).post(reverse(DESCRIBE_URL, args=[image.pk]))
    assert response.status_code == 403
    assert response.json() == {"ok": False, "message": message}
    response = logged_in(user).get(reverse(STATUS_URL, args=[image.pk]))
    assert response.json() == {"ok": True, "available": False}
    assert chat_requests(provider) == []


@pytest.mark.django_db
def test_without_the_permission_403_and_no_request(vision):
    assert_refused(
        image_editor(ai=False),
        "You do not have permission to use AI suggestions in the editor.",
        vision,
    )


@pytest.mark.django_db
def test_an_image_the_user_may_not_change_is_refused(vision):
    assert_refused(
        make_editor("no-images", pages=False),
        "You do not have permission to change this image.",
        vision,
    )


@pytest.mark.django_db
def test_get_is_not_allowed_on_the_describe_endpoint(vision):
    image = make_image()
    response = logged_in(image_editor()).get(reverse(DESCRIBE_URL, args=[image.pk]))
    assert response.status_code == 405


@pytest.mark.django_db
def test_csrf_is_required(vision):
    from django.test import Client

    image = make_image()
    client = Client(enforce_csrf_checks=True)
    client.force_login(image_editor())
    response = client.post(reverse(DESCRIBE_URL, args=[image.pk]))
    assert response.status_code == 403
    assert chat_requests(vision) == []


@pytest.mark.django_db
def test_an_alias_that_cannot_take_images_is_refused_without_a_request(provider):
    image = make_image()
    user = image_editor()
    with override_settings(
        WAGTAIL_VECTOR_INDEX=vision_settings(provider, vision=False)
    ):
        response = logged_in(user).post(reverse(DESCRIBE_URL, args=[image.pk]))
        status = logged_in(user).get(reverse(STATUS_URL, args=[image.pk])).json()
        with pytest.raises(AIVisionNotSupportedError):
            image_descriptions.describe_image(image)
    assert response.json() == {
        "ok": False,
        "message": (
            'AI backend "vision": it is not known whether its model '
            '"openai/test-vision" takes images. If it does, set '
            'CONFIG["SUPPORTS_VISION"] = True for this alias; if not, choose '
            "another alias to describe images."
        ),
    }
    assert status["available"] is False
    assert chat_requests(provider) == []


@pytest.mark.django_db
def test_a_model_litellm_knows_cannot_take_images_is_refused(provider):
    image = make_image()
    settings = vision_settings(provider)
    settings["CHAT_BACKENDS"]["vision"]["CONFIG"]["MODEL_ID"] = "gpt-3.5-turbo"
    del settings["CHAT_BACKENDS"]["vision"]["CONFIG"]["SUPPORTS_VISION"]
    with override_settings(WAGTAIL_VECTOR_INDEX=settings):
        response = logged_in(image_editor()).post(
            reverse(DESCRIBE_URL, args=[image.pk])
        )
    assert response.json()["message"] == (
        'AI backend "vision": its model "gpt-3.5-turbo" cannot take images, so it '
        "cannot describe them. Choose a chat alias whose model takes images in "
        'WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"]["ALIAS"].'
    )
    assert chat_requests(provider) == []


@pytest.mark.django_db
def test_a_provider_failure_is_a_message_and_changes_nothing(vision):
    image = make_image(description="Old words")
    vision.fail("500")
    response = logged_in(image_editor()).post(reverse(DESCRIBE_URL, args=[image.pk]))
    assert response.status_code == 200
    answer = response.json()
    assert answer["ok"] is False
    assert answer["message"]
    image.refresh_from_db()
    assert image.description == "Old words"


@pytest.mark.django_db
def test_the_status_says_the_button_may_be_shown(vision):
    image = make_image(description="Now")
    answer = logged_in(image_editor()).get(reverse(STATUS_URL, args=[image.pk])).json()
    assert answer == {
        "ok": True,
        "available": True,
        "url": reverse(DESCRIBE_URL, args=[image.pk]),
    }
    missing = logged_in(image_editor("other")).get(reverse(STATUS_URL, args=[999]))
    assert missing.json() == {"ok": True, "available": False}
    assert chat_requests(vision) == []


@pytest.mark.django_db
def test_the_offline_echo_backend_describes_offline(provider):
    image = make_image(title="Harbour at dawn", size=(200, 100))
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {"default": {"CLASS": ECHO_CHAT, "CONFIG": {}}}
        }
    ):
        assert image_descriptions.is_available()
        description = image_descriptions.describe_image(image)
    assert description.offline
    assert description.text == (
        '(offline) An image named "Harbour at dawn", 200×100 pixels.'
    )


def test_the_editor_script_is_on_editor_pages_only_as_text():
    from wagtail import hooks

    outputs = [fn() for fn in hooks.get_hooks("insert_editor_js")]
    script = next(o for o in outputs if "wvi-image-description-config" in o)
    assert "image-description-controller.js" in script
    config = json.loads(script.split(">", 1)[1].split("</script>")[0])
    assert config["strings"]["button"] == "Describe with AI"
    assert config["placeholder"] in config["editUrl"]


# -- checks --------------------------------------------------------------------


def test_no_image_description_setting_no_message():
    with override_settings(
        WAGTAIL_VECTOR_INDEX={"CHAT_BACKENDS": {"default": {"CLASS": ECHO_CHAT}}}
    ):
        assert check_settings() == []


def checked(image_description, **config):
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {
                "default": {"CLASS": ECHO_CHAT},
                "text": {
                    "CLASS": "wagtail_vector_index.ai_utils.backends.litellm."
                    "LiteLLMChatBackend",
                    "CONFIG": {"MODEL_ID": "gpt-3.5-turbo", **config},
                },
                "unknown": {
                    "CLASS": "wagtail_vector_index.ai_utils.backends.litellm."
                    "LiteLLMChatBackend",
                    "CONFIG": {"MODEL_ID": "openai/mystery", "TOKEN_LIMIT": 4096},
                },
            },
            "IMAGE_DESCRIPTION": image_description,
        }
    ):
        return check_settings()


def test_check_an_alias_that_takes_images_passes():
    assert checked({"ALIAS": "default"}) == []
    assert checked({"ALIAS": "text"}, SUPPORTS_VISION=True) == []


def test_check_an_alias_that_cannot_take_images():
    assert checked({"ALIAS": "text"}) == [
        Error(
            'Images are described by chat alias "text" '
            '(WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"]["ALIAS"]), but its model '
            '"gpt-3.5-turbo" cannot take images.',
            hint=(
                "Name an alias whose model takes images (such as gpt-4o), or, if "
                'LiteLLM is wrong about this model, set "SUPPORTS_VISION": True in '
                'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["text"]["CONFIG"]. Until '
                "then the image editor shows no button and describe_images refuses "
                "to run."
            ),
            id="wagtail_vector_index.E035",
        )
    ]


def test_check_a_model_not_known_to_take_images():
    assert checked({"ALIAS": "unknown"}) == [
        Warning(
            'Images are described by chat alias "unknown" '
            '(WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"]["ALIAS"]), but LiteLLM '
            'does not know whether its model "openai/mystery" takes images.',
            hint=(
                'If it does, set "SUPPORTS_VISION": True in '
                'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["unknown"]["CONFIG"]; until '
                "then the image editor shows no button and describe_images refuses "
                "to run."
            ),
            id="wagtail_vector_index.W013",
        )
    ]


def test_check_an_alias_that_is_not_configured():
    assert checked({"ALIAS": "vision"}) == [
        Error(
            'WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"]["ALIAS"] is \'vision\', '
            "which is not a configured chat alias.",
            hint="Name a chat alias whose model takes images (configured: "
            "default, text, unknown).",
            id="wagtail_vector_index.E034",
        )
    ]


def test_check_a_malformed_setting():
    assert checked(["vision"]) == [
        Error(
            'WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"] must be a dict, not list.',
            hint='Give the image description settings as {"ALIAS": "vision"}.',
            id="wagtail_vector_index.E034",
        )
    ]
    assert checked({"ALIAS": "default", "PROMT": "x"}) == [
        Warning(
            'WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"] has an unknown key "PROMT".',
            hint='The known keys are "ALIAS", "PROMPT"; check the spelling.',
            id="wagtail_vector_index.W014",
        )
    ]
    assert checked({"ALIAS": "default", "PROMPT": "Describe {content}"}) == [
        Error(
            'WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"]["PROMPT"] has placeholders '
            "that are not known: {content}.",
            hint="A prompt may use {language}, {max_length}, {title}; write a "
            'brace itself as "{{" or "}}". Remove PROMPT to use the built-in one.',
            id="wagtail_vector_index.E034",
        )
    ]


def test_check_supports_vision_must_be_a_bool():
    messages = checked({"ALIAS": "text"}, SUPPORTS_VISION="yes")
    assert (
        Error(
            'WAGTAIL_VECTOR_INDEX["CHAT_BACKENDS"]["text"]["CONFIG"]'
            "[\"SUPPORTS_VISION\"] must be True or False, not 'yes'.",
            hint="True says the chat model takes images (for image descriptions), "
            "False that it does not; remove the key to go by LiteLLM's model map.",
            id="wagtail_vector_index.E018",
        )
        in messages
    )


# -- manage.py describe_images ---------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def run(*args, stdin=None):
    out = io.StringIO()
    call_command("describe_images", *args, stdout=out, stdin=stdin or io.StringIO())
    return out.getvalue()


@pytest.fixture
def images(db):
    from wagtail.models import Collection

    root = Collection.get_first_root_node()
    photos = root.add_child(name="Photos")
    return {
        "empty": make_image("Empty one"),
        "described": make_image("Described", description="Already said"),
        "photo": make_image("Photo", collection=photos),
    }


def test_command_missing_only_with_yes(vision, images):
    output = run("--missing", "--yes")
    assert "2 images to describe with vision (openai/test-vision)" in output
    assert "Done: 2 described, 0 failed." in output
    for image in images.values():
        image.refresh_from_db()
    assert images["empty"].description == "A red square on a white background."
    assert images["photo"].description == "A red square on a white background."
    assert images["described"].description == "Already said"
    assert len(chat_requests(vision)) == 2


def test_command_collection_by_name_and_id(vision, images):
    collection = images["photo"].collection
    for value in ("Photos", str(collection.pk)):
        vision.reset()
        vision.state.reply = REPLY
        output = run("--collection", value, "--yes")
        assert "1 images to describe" in output
        assert len(chat_requests(vision)) == 1
    with pytest.raises(CommandError, match="No collection Nope"):
        run("--collection", "Nope", "--yes")


def test_command_site_by_hostname_and_id(vision, images):
    from wagtail.models import Site

    from wagtail_vector_index.models import AIUsageRecord

    other = Site.objects.create(
        hostname="other.example", root_page=Site.objects.get().root_page
    )
    for value in ("other.example", str(other.pk)):
        AIUsageRecord.objects.all().delete()
        vision.state.reply = REPLY
        run("--site", value, "--collection", "Photos", "--yes")
        assert list(AIUsageRecord.objects.values_list("site", flat=True)) == [other.pk]
    with pytest.raises(CommandError, match="No site nope.example"):
        run("--site", "nope.example", "--yes")


def test_command_dry_run_shows_the_estimate_and_calls_nothing(vision, images):
    output = run("--dry-run")
    assert "3 images to describe with vision (openai/test-vision): about " in output
    assert "tokens, cost unknown for this model." in output
    assert "1 of them have a description, which will be replaced" in output
    assert "Dry run: nothing described." in output
    assert chat_requests(vision) == []


def test_command_asks_at_a_terminal(vision, images):
    output = run("--missing", stdin=FakeTerminal("n\n"))
    assert "Describe 2 images now? [y/N]" in output
    assert "Nothing described." in output
    assert chat_requests(vision) == []
    output = run("--missing", stdin=FakeTerminal("y\n"))
    assert "Done: 2 described" in output


def test_command_without_a_terminal_refuses_unless_yes(vision, images):
    with pytest.raises(CommandError, match="standard input is not a terminal"):
        run("--missing")
    assert chat_requests(vision) == []


def test_command_the_estimate_over_the_budget_refuses(provider, images):
    provider.state.reply = REPLY
    with override_settings(
        WAGTAIL_VECTOR_INDEX=vision_settings(
            provider, USAGE={"MONTHLY_BUDGET_TOKENS": 500}
        )
    ):
        with pytest.raises(CommandError, match="left of this month's AI budget"):
            run("--yes")
        assert chat_requests(provider) == []
        # --force starts; the budget still stops the calls, cleanly.
        with pytest.raises(CommandError, match="Stopped: .* 0 images were described"):
            run("--yes", "--force")
    assert chat_requests(provider) == []


def test_command_stops_when_the_budget_runs_out_midway(provider, images):
    provider.state.reply = REPLY
    from wagtail_vector_index.models import AIUsageRecord

    # What one call reserves before it is sent (the estimate: prompt and
    # image) and what it is then recorded at (the provider's count): a
    # budget that fits the first call's reservation but not the second's.
    image = images["empty"]
    with override_settings(WAGTAIL_VECTOR_INDEX=vision_settings(provider)):
        backend = image_descriptions.get_backend()
        messages = image_descriptions.build_messages(image, language="en")
        reserved = backend.estimate_prompt_tokens(messages)
        image_descriptions.describe_image(image)
    spent = AIUsageRecord.objects.get().total_tokens
    provider.reset()
    provider.state.reply = REPLY
    with override_settings(
        WAGTAIL_VECTOR_INDEX=vision_settings(
            provider, USAGE={"MONTHLY_BUDGET_TOKENS": reserved + spent // 2}
        )
    ):
        with pytest.raises(CommandError) as raised:
            run("--yes", "--force")
    message = str(raised.value)
    assert message.startswith("Stopped: ")
    assert "1 images were described, 0 failed" in message
    assert "run the command again (with --missing)" in message
    assert len(chat_requests(provider)) == 1


def test_command_counts_provider_errors_per_image(vision, images):
    vision.fail("500")
    with pytest.raises(CommandError, match="Done: 1 described, 1 failed."):
        run("--missing", "--yes")
    images["photo"].refresh_from_db()
    assert images["photo"].description == "A red square on a white background."


def test_command_refuses_an_alias_that_cannot_take_images(provider, images):
    with override_settings(
        WAGTAIL_VECTOR_INDEX=vision_settings(provider, vision=False)
    ):
        with pytest.raises(CommandError, match="not known whether its model"):
            run("--yes")
    assert chat_requests(provider) == []


def test_command_with_the_offline_backend_asks_nothing(images):
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {"default": {"CLASS": ECHO_CHAT, "CONFIG": {}}}
        }
    ):
        output = run("--missing")
    assert "about $0.0000" in output
    images["empty"].refresh_from_db()
    assert images["empty"].description.startswith('(offline) An image named "Empty')


@pytest.mark.django_db
def test_the_editors_daily_budget_refuses_before_any_request(provider):
    image = make_image()
    with override_settings(
        WAGTAIL_VECTOR_INDEX=vision_settings(
            provider, USAGE={"USER_DAILY_BUDGET_TOKENS": 10}
        )
    ):
        response = logged_in(image_editor()).post(
            reverse(DESCRIBE_URL, args=[image.pk])
        )
    answer = response.json()
    assert answer["ok"] is False
    assert "budget" in answer["message"]
    assert chat_requests(provider) == []
    image.refresh_from_db()
    assert image.description == ""


def test_a_stored_prompt_keeps_the_image_out():
    from wagtail_vector_index import usage

    stored = usage.describe_messages(
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe"},
                    {
                        "type": "image_url",
                        "image_url": {"url": "data:image/png;base64,QUJD"},
                    },
                ],
            }
        ]
    )
    assert json.loads(stored)[0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,<4 characters>"},
    }


def test_the_image_model_is_the_sites_own():
    """Everything goes through get_image_model(): a custom image model works
    if it has a text field named description (Wagtail's AbstractImage has
    one, 255 characters); a model without one is not offered."""
    from wagtail.documents.models import Document
    from wagtail.images import get_image_model

    assert image_descriptions.has_description_field(get_image_model())
    assert image_descriptions.max_length(get_image_model()) == 255
    assert not image_descriptions.has_description_field(Document)
