"""Image descriptions: an image's ``description`` (Wagtail's alt text) from a
chat alias that takes images.

The one core that the image editor's "Describe with AI" button and
``manage.py describe_images`` share: which alias describes images
(``WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"]``), the message (the prompt and
a rendition of the image as a ``data:`` URL, LiteLLM's image input), the call
(recorded in the usage ledger as "image description", within the site's and
the editor's budgets) and the answer, made one line that fits the field.

An alias whose model cannot take images (or of which it is not known) is
refused before any request (``AIVisionNotSupportedError``).
"""

from __future__ import annotations

import base64
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils import translation

from wagtail_vector_index import ai, conf, usage
from wagtail_vector_index.ai_utils.types import IMAGE_PART_TOKENS, ChatMessage
from wagtail_vector_index.exceptions import (
    AIVisionNotSupportedError,
    WagtailVectorIndexError,
)
from wagtail_vector_index.i18n import gettext, language_name
from wagtail_vector_index.i18n import gettext_lazy as _

if TYPE_CHECKING:
    from wagtail.models import Site

    from wagtail_vector_index.ai_utils.backends.base import BaseChatBackend

#: The built-in prompt, translated into the language the description is
#: written in. Placeholders: {title}, {language}, {max_length}.
DEFAULT_PROMPT = _(
    # Translators: keep {language}, {max_length} and {title} as they are
    # (they are replaced by a language's name, a number and the image's
    # title); keep the title in quotes.
    "Write the alternative text of this image for people who cannot see it: "
    "one sentence in {language}, at most {max_length} characters, saying what "
    'the image shows. Do not begin with "Image of" or "Picture of". The '
    'image\'s title is "{title}".'
)
#: The placeholders a prompt may use.
PLACEHOLDERS = frozenset({"title", "language", "max_length"})
#: The longest side of the picture sent: providers scale larger images down
#: anyway (OpenAI to 2048, then 768 on the short side), and it bounds the
#: request's size.
RENDITION_SIZE = "max-1024x1024"
#: Tokens an answer is estimated at (a sentence of alt text).
ANSWER_TOKENS = 80


class ImageDescriptionError(WagtailVectorIndexError):
    """An image that cannot be described (no picture to send, an empty
    answer); the message is written for an editor."""


@dataclass(frozen=True)
class Description:
    """A suggested description and who wrote it."""

    text: str
    alias: str
    model_id: str
    offline: bool


def get_alias() -> str:
    """The chat alias that describes images."""
    return conf.get_image_description_settings()["ALIAS"]


def prompt_placeholders(prompt: str) -> set[str]:
    """The ``{name}`` placeholders of ``prompt`` (raises ``ValueError`` for a
    malformed one, such as an unclosed brace)."""
    return {
        name
        for _text, name, _spec, _conversion in string.Formatter().parse(prompt)
        if name is not None
    }


def has_description_field(model: Any = None) -> bool:
    """Whether the image model has a ``description`` text field (Wagtail 6.3
    and later give ``AbstractImage`` one)."""
    from django.core.exceptions import FieldDoesNotExist

    if model is None:
        from wagtail.images import get_image_model

        model = get_image_model()
    try:
        field = model._meta.get_field("description")
    except FieldDoesNotExist:
        return False
    return field.get_internal_type() in ("CharField", "TextField")


def max_length(model: Any = None) -> int | None:
    """The ``description`` field's ``max_length`` (``None``: unbounded)."""
    if model is None:
        from wagtail.images import get_image_model

        model = get_image_model()
    return model._meta.get_field("description").max_length


def vision_support(backend: BaseChatBackend) -> bool | None:
    """Whether ``backend``'s model takes images (``None``: not known)."""
    return backend.config.supports_vision


def get_backend(*, site: Site | None = None, request: Any = None) -> BaseChatBackend:
    """The backend that describes images, refused (before any request) when
    its model cannot take images or it is not known whether it can."""
    backend = ai.get_chat_backend(get_alias(), site=site, request=request)
    check_vision(backend)
    return backend


def check_vision(backend: BaseChatBackend) -> None:
    supports = vision_support(backend)
    if supports is not True:
        raise AIVisionNotSupportedError(
            backend.alias, backend.config.model_id, known=supports is False
        )


def is_available() -> bool:
    """Whether images can be described: the image model has a description
    and the alias exists and takes images (no request is made)."""
    if not has_description_field():
        return False
    backend = ai.get_configured_backend(conf.CHAT, get_alias())
    return backend is not None and vision_support(backend) is True


def language_of(image: Any, site: Site | None = None) -> str:
    """The language code a description of ``image`` is written in: the
    image's own locale (a translatable image model), else the site's (its
    root page's), else the default content language."""
    locale = getattr(image, "locale", None)
    if locale is None and site is not None:
        locale = getattr(site.root_page, "locale", None)
    if locale is not None:
        return locale.language_code
    from wagtail.models import Locale

    try:
        return Locale.get_default().language_code
    except Locale.DoesNotExist:
        return translation.get_language() or "en"


def rendition_filter(image: Any) -> str:
    """The rendition sent: at most 1024 pixels a side, as PNG when the
    original is one (it may be transparent), else JPEG."""
    kind = "png" if image.file.name.lower().endswith(".png") else "jpeg"
    return f"{RENDITION_SIZE}|format-{kind}"


def image_data_url(image: Any) -> str:
    """A ``data:`` URL of a rendition of ``image`` (see :func:`rendition_filter`)."""
    is_svg = getattr(image, "is_svg", None)
    if is_svg is not None and is_svg():
        raise ImageDescriptionError(
            gettext("SVG images cannot be described: the AI needs a picture.")
        )
    from wagtail.images.models import SourceImageIOError

    try:
        rendition = image.get_rendition(rendition_filter(image))
        with rendition.file.open("rb") as file:
            data = file.read()
    except (SourceImageIOError, OSError) as error:
        raise ImageDescriptionError(
            gettext("The image's file could not be read, so it cannot be described.")
        ) from error
    mime = "image/png" if rendition.file.name.lower().endswith(".png") else "image/jpeg"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def prompt_text(
    *, title: str, language: str, limit: int | None, prompt: str | None = None
) -> str:
    """The prompt, in ``language`` when it is the built-in one."""
    template = prompt or conf.get_image_description_settings().get("PROMPT")
    with translation.override(language):
        if not template:
            template = str(DEFAULT_PROMPT)
        return template.format(
            title=title,
            language=language_name(language),
            max_length=limit or 255,
        )


def build_messages(
    image: Any, *, language: str, title: str | None = None
) -> list[ChatMessage]:
    """The message asking for ``image``'s description: the prompt and the
    picture, as LiteLLM's image input."""
    text = prompt_text(
        title=image.title if title is None else title,
        language=language,
        limit=max_length(type(image)),
    )
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": text},
                {"type": "image_url", "image_url": {"url": image_data_url(image)}},
            ],
        }
    ]


def clean(text: str, limit: int | None) -> str:
    """The answer as a description: one line, without surrounding quotes,
    cut to ``limit`` characters (at a word where possible, with "…")."""
    text = " ".join(text.split())
    if len(text) > 1 and text[0] in "\"'“«„" and text[-1] in "\"'”»“":
        text = text[1:-1].strip()
    if limit and len(text) > limit:
        cut = text[: limit - 1]
        if " " in cut[limit // 2 :]:
            cut = cut.rsplit(" ", 1)[0]
        text = cut.rstrip(" ,;:.") + "…"
    return text


def describe_image(
    image: Any,
    *,
    site: Site | None = None,
    request: Any = None,
    user: Any = None,
    title: str | None = None,
    language: str | None = None,
) -> Description:
    """Ask the image-description alias for ``image``'s description.

    ``site`` (or ``request``'s site) chooses the parameters and budget,
    ``user`` the daily budget and the ledger's user; ``title`` replaces the
    image's saved title in the prompt (the editor's unsaved one).
    """
    if request is not None and site is None:
        from wagtail.models import Site

        site = Site.find_for_request(request)
    backend = get_backend(site=site, request=request)
    backend = backend.with_usage(
        feature=usage.IMAGE_DESCRIPTION,
        site=site,
        user=user,
        user_budget=user is not None,
    )
    messages = build_messages(
        image, language=language or language_of(image, site), title=title
    )
    response = backend.chat(messages=messages)
    text = clean(response.text, max_length(type(image)))
    if not text:
        raise ImageDescriptionError(
            gettext("The AI answered with an empty description; try again.")
        )
    return Description(
        text=text,
        alias=response.alias or backend.alias,
        model_id=response.model_id or backend.config.model_id,
        offline=backend.offline,
    )


def estimate(backend: BaseChatBackend, count: int) -> tuple[int, float | None]:
    """Tokens and US dollars (``None``: prices unknown) of describing
    ``count`` images with ``backend``: the prompt, one image and a sentence
    of answer each."""
    prompt_tokens = IMAGE_PART_TOKENS + len(str(DEFAULT_PROMPT)) // 4 + 4
    custom = conf.get_image_description_settings().get("PROMPT")
    if custom:
        prompt_tokens = IMAGE_PART_TOKENS + len(custom) // 4 + 4
    cost = backend.estimate_chat_cost(prompt_tokens, ANSWER_TOKENS)
    tokens = (prompt_tokens + ANSWER_TOKENS) * count
    return tokens, (None if cost is None else cost * count)
