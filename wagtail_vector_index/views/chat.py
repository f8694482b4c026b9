"""The chat test page: try a chat backend with a site's parameters, streamed.

``ChatTestView`` renders the form. The ``wvi-chat`` Stimulus controller posts
it to ``ChatStreamView``, which answers with newline-delimited JSON::

    {"type": "part", "index": 0, "content": "Hello"}
    {"type": "done", "time_to_first_token": 0.21, "total_time": 1.4, ...}

or ``{"type": "error", "message": "..."}`` when the provider fails (the
message is one written for editors: no traceback, no key).
``ChatSaveOverridesView`` stores the tried parameters as the site's overrides.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.core.exceptions import ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.forms.utils import pretty_name
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    StreamingHttpResponse,
)
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View
from wagtail.admin import messages
from wagtail.log_actions import log
from wagtail.models import Site

from wagtail_vector_index import ai, conf, usage
from wagtail_vector_index.exceptions import (
    AIBudgetExceededError,
    AIProviderError,
    InvalidAIBackendError,
)
from wagtail_vector_index.models import AISettings
from wagtail_vector_index.parameters import allowed_for
from wagtail_vector_index.redaction import get_logger
from wagtail_vector_index.views import ratelimit
from wagtail_vector_index.views.base import (
    AIPagePermissionMixin,
    AIPageView,
    forbidden,
    site_from_query,
    warn_about_budgets,
)
from wagtail_vector_index.views.forms import (
    MAX_MESSAGE_LENGTH,
    MAX_SYSTEM_PROMPT_LENGTH,
    SIDES,
    ChatRequestForm,
    ParameterSetForm,
    backend_choices,
    default_alias,
)

# Redacted: a traceback's chained LiteLLM errors may quote a key.
logger = get_logger(__name__)

NDJSON = "application/x-ndjson"

#: Errors whose message is written for editors.
SAFE_ERRORS = (AIProviderError, InvalidAIBackendError, AIBudgetExceededError)
UNEXPECTED_ERROR = _(
    "Something unexpected went wrong while calling the AI provider. "
    "The details are in the server's logs."
)

#: Prompts longer than this are not carried over in the page's URL.
MAX_PROMPT_IN_URL = 2_000

# As Django's json_script: "<", ">" and "&" never appear literally in a line.
_JSON_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


def ndjson_line(payload: dict[str, Any]) -> bytes:
    """One line of the stream: JSON, HTML-significant characters escaped."""
    text = json.dumps(payload, default=str, ensure_ascii=False)
    return (text.translate(_JSON_ESCAPES) + "\n").encode()


def error_payload(message: str) -> dict[str, Any]:
    # str(): a lazy translation is translated now, in the request's language.
    return {"type": "error", "message": str(message)}


def error_response(message: str, status: int, **extra: Any) -> HttpResponse:
    response = HttpResponse(
        ndjson_line({**error_payload(message), **extra}),
        content_type=NDJSON,
        status=status,
    )
    response["Cache-Control"] = "no-store"
    return response


def side_label(key: str) -> str:
    return key.upper()


@dataclass
class ParameterSide:
    """One parameter set of the page (B is shown in compare mode)."""

    key: str
    form: ParameterSetForm
    backend: Any = None
    error: str = ""

    @property
    def label(self) -> str:
        return side_label(self.key)


def build_side(
    key: str,
    alias: str,
    site: Site | None,
    choices: list[tuple[str, str]],
    data: Any = None,
) -> ParameterSide:
    backend, error = None, ""
    if alias:
        try:
            backend = ai.get_chat_backend(alias, site=site)
        except InvalidAIBackendError as exc:
            error = str(exc)
    form = ParameterSetForm(
        data, prefix=key, choices=choices, backend=backend, initial={"alias": alias}
    )
    return ParameterSide(key=key, form=form, backend=backend, error=error)


def can_change_settings(user: Any, site: Site | None) -> bool:
    """Whether ``user`` may change the AI settings of ``site``."""
    if site is None:
        return False
    policy = AISettings.get_permission_policy()
    return policy.user_has_permission_for_instance(user, "change", site)


def chat_page_url(
    *,
    site: Site | None,
    aliases: dict[str, str],
    compare: bool,
    system_prompt: str = "",
    message: str = "",
) -> str:
    """The chat page showing these choices (as the page's reload does)."""
    query = {"site": site.pk if site else ""}
    query.update({f"{key}-alias": alias for key, alias in aliases.items() if alias})
    if compare:
        query["compare"] = "1"
    if len(system_prompt) + len(message) <= MAX_PROMPT_IN_URL:
        if system_prompt:
            query["system_prompt"] = system_prompt
        if message:
            query["message"] = message
    return f"{reverse('wagtail_vector_index:chat')}?{urlencode(query)}"


class ChatTestView(AIPageView):
    """The chat test page (GET; query parameters choose site and aliases)."""

    template_name = "wagtail_vector_index/admin/chat.html"
    page_title = _("Chat test")
    header_icon = "comment"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        query = request.GET
        choices = backend_choices(conf.CHAT)
        aliases = [alias for alias, _ in choices]
        site = site_from_query(request, query.get("site"))
        alias_a = query.get("a-alias")
        if alias_a not in aliases:
            alias_a = default_alias(choices)
        alias_b = query.get("b-alias")
        if alias_b not in aliases:
            others = [alias for alias in aliases if alias != alias_a]
            alias_b = others[0] if others else alias_a
        compare = query.get("compare") in ("1", "on", "true")
        request_form = ChatRequestForm(
            initial={
                "site": site,
                "system_prompt": query.get("system_prompt", "")[
                    :MAX_SYSTEM_PROMPT_LENGTH
                ],
                "message": query.get("message", "")[:MAX_MESSAGE_LENGTH],
                "compare": compare,
            }
        )
        sides = [
            build_side("a", alias_a, site, choices),
            build_side("b", alias_b, site, choices),
        ]
        warn_about_budgets(request, site)
        return self.render_to_response(
            self.get_context_data(
                request_form=request_form, sides=sides, site=site, compare=compare
            )
        )

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        site = kwargs.get("site")
        can_save = can_change_settings(self.request.user, site)
        context.update(
            chat_url=reverse("wagtail_vector_index:chat"),
            stream_url=reverse("wagtail_vector_index:chat_stream"),
            save_url=reverse("wagtail_vector_index:chat_save_overrides"),
            can_save=can_save,
            settings_url=(
                reverse(
                    "wagtailsettings:edit",
                    args=["wagtail_vector_index", "aisettings", site.pk],
                )
                if can_save
                else ""
            ),
            has_backends=bool(ai.configured_aliases(conf.CHAT)),
            rate_limit=conf.get_test_pages_rate_limit(),
            js_strings=json.dumps(js_strings()),
        )
        return context


def js_strings() -> dict[str, str]:
    """What the ``wvi-chat`` controller writes on the page, translated.

    Passed to it as its ``strings`` value (no JavaScript catalogue is
    needed); ``%(name)s`` placeholders are filled in by the controller.
    """
    return {
        "refused": gettext(
            "The server refused the request (HTTP %(status)s). Reload the page "
            "and try again."
        ),
        "endedUnexpectedly": gettext("The answer ended unexpectedly."),
        "stopped": gettext("Stopped."),
        # Translators: %(message)s is the browser's description of the error.
        "requestFailed": gettext("The request failed: %(message)s"),
        "status": gettext("Status"),
        "backend": gettext("Backend"),
        "timeToFirstToken": gettext("Time to first token"),
        "totalTime": gettext("Total time"),
        # Translators: a duration, e.g. "1.25 s".
        "seconds": gettext("%(seconds)s s"),
        "tokens": gettext("Tokens"),
        "tokenCounts": gettext(
            "%(prompt)s prompt + %(completion)s completion = %(total)s"
        ),
        "cost": gettext("Cost"),
        "unknown": gettext("Unknown"),
        "parameters": gettext("Parameters"),
    }


def form_errors_message(*forms_: Any) -> str:
    problems = []
    for form in forms_:
        for name, errors in form.errors.items():
            field = form.fields.get(name)
            label = str(field.label or pretty_name(name)) if field else gettext("Form")
            # Translators: a form field's label and what is wrong with its value.
            problems.append(
                gettext("%(label)s: %(errors)s")
                % {"label": label, "errors": " ".join(errors)}
            )
    return gettext("Check the form. %(problems)s") % {"problems": " ".join(problems)}


class ChatStreamView(AIPagePermissionMixin, View):
    """POST only: stream one answer as newline-delimited JSON.

    ``side`` (``"a"`` or ``"b"``) says which parameter set of the form to
    use. Only allow-listed parameters are read from the submission, and only
    those that differ from what the backend sends anyway are passed to the
    call. Under ASGI the answer is streamed by an async generator with
    ``achat()``, under WSGI by a generator with ``chat()``; either way
    stopping the request (the client goes away) closes the provider stream.
    """

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        side = request.POST.get("side")
        if side not in SIDES:
            side = SIDES[0]
        request_form = ChatRequestForm(request.POST)
        parameter_form = ParameterSetForm(
            request.POST, prefix=side, choices=backend_choices(conf.CHAT)
        )
        valid = request_form.is_valid()
        valid = parameter_form.is_valid() and valid
        if not valid:
            return error_response(
                form_errors_message(request_form, parameter_form),
                status=400,
                errors={
                    **request_form.errors.get_json_data(),
                    **parameter_form.errors.get_json_data(),
                },
            )
        try:
            backend = ai.get_chat_backend(
                parameter_form.cleaned_data["alias"],
                site=request_form.cleaned_data["site"],
            ).with_usage(
                feature=usage.CHAT_TEST_PAGE, user=request.user, user_budget=True
            )
            call = parameter_form.call_parameters(backend)
        except InvalidAIBackendError as error:
            return error_response(str(error), status=200)
        except ValidationError as error:
            return error_response(" ".join(error.messages), status=400)
        # Counted only now: a rejected form or a broken backend calls no one.
        if not ratelimit.take(request.user):
            return error_response(ratelimit.message(), status=429)

        conversation = request_form.messages()
        # The answer is streamed after this view has returned, outside
        # Wagtail's override of the editor's language: each line is made in
        # the language of this request, error messages included.
        language = translation.get_language()
        if isinstance(request, ASGIRequest):
            content: Any = ain_language(
                astream_answer(backend, conversation, call), language
            )
        else:
            content = in_language(stream_answer(backend, conversation, call), language)
        response = StreamingHttpResponse(content, content_type=NDJSON)
        response["Cache-Control"] = "no-store"
        # Proxies such as nginx must pass each line on as it comes.
        response["X-Accel-Buffering"] = "no"
        return response


def done_payload(response: Any, backend: Any, call: dict[str, Any]) -> dict[str, Any]:
    """The last line: timings, usage, cost and the parameters that were sent."""
    allowed = allowed_for(conf.CHAT)
    usage = response.usage

    def seconds(value: float | None) -> float | None:
        return round(value, 3) if value is not None else None

    return {
        "type": "done",
        "time_to_first_token": seconds(response.time_to_first_token),
        "total_time": seconds(response.total_time),
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
        "cost": response.cost,
        "model": response.model_id or backend.config.model_id,
        "backend": backend.display_name,
        "offline": backend.offline,
        # Allow-listed parameters only: settings may hold api_base and keys.
        "parameters": {
            name: {"value": parameter.value, "source": parameter.source_label}
            for name, parameter in backend.effective_parameters(call).items()
            if name in allowed
        },
    }


def in_language(lines: Iterator[bytes], language: str | None) -> Iterator[bytes]:
    """``lines``, each one made with ``language`` active (the language is not
    left active between lines). Closing this generator closes ``lines``."""
    try:
        while True:
            with translation.override(language):
                line = next(lines, None)
            if line is None:
                return
            yield line
    finally:
        lines.close()  # type: ignore[attr-defined]


async def ain_language(
    lines: AsyncIterator[bytes], language: str | None
) -> AsyncIterator[bytes]:
    """:func:`in_language` for an async generator."""
    try:
        while True:
            with translation.override(language):
                line = await anext(lines, None)
            if line is None:
                return
            yield line
    finally:
        await lines.aclose()  # type: ignore[attr-defined]


def part_payload(part: dict[str, Any]) -> dict[str, Any]:
    return {"type": "part", "index": part["index"], "content": part["content"]}


def stream_answer(
    backend: Any, conversation: list[dict[str, str]], call: dict[str, Any]
) -> Iterator[bytes]:
    """Lines of the answer (WSGI). Closing the generator closes the stream."""
    response = None
    try:
        response = backend.chat(messages=conversation, stream=True, **call)
        for part in response:
            yield ndjson_line(part_payload(part))
        yield ndjson_line(done_payload(response, backend, call))
    except SAFE_ERRORS as error:
        yield ndjson_line(error_payload(str(error)))
    except Exception:
        logger.exception("Chat test page: the call to %r failed", backend)
        yield ndjson_line(error_payload(UNEXPECTED_ERROR))
    finally:
        if response is not None:
            # Also when the client went away: the provider stops generating
            # (and billing) once its connection is closed.
            with contextlib.suppress(Exception):
                response.close()


async def astream_answer(
    backend: Any, conversation: list[dict[str, str]], call: dict[str, Any]
) -> AsyncIterator[bytes]:
    """Lines of the answer (ASGI), with ``achat()`` and ``aclose()``."""
    response = None
    try:
        response = await backend.achat(messages=conversation, stream=True, **call)
        async for part in response:
            yield ndjson_line(part_payload(part))
        yield ndjson_line(done_payload(response, backend, call))
    except SAFE_ERRORS as error:
        yield ndjson_line(error_payload(str(error)))
    except Exception:
        logger.exception("Chat test page: the call to %r failed", backend)
        yield ndjson_line(error_payload(UNEXPECTED_ERROR))
    finally:
        if response is not None:
            with contextlib.suppress(Exception):
                await response.aclose()


def posted_site(value: str | None) -> Site | None:
    if value and value.isdigit():
        return Site.objects.filter(pk=int(value)).first()
    return None


class ChatSaveOverridesView(ChatTestView):
    """POST only: store one parameter set as the site's overrides for its alias.

    Stored are the values that differ from what the alias gets without its
    own site overrides (Django settings, then the site's overrides for all
    chat backends); an emptied field removes the override. Needs the
    permission to change the site's AI settings; the change is written to
    Wagtail's audit log.
    """

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        data = request.POST
        side = data.get("side")
        if side not in SIDES:
            side = SIDES[0]
        choices = backend_choices(conf.CHAT)
        aliases = [alias for alias, _ in choices]
        request_form = ChatRequestForm(data)
        request_form.fields["message"].required = False  # Nothing is sent.
        site = posted_site(data.get("site"))
        sides = []
        for key in SIDES:
            alias = data.get(f"{key}-alias")
            if alias not in aliases:
                alias = default_alias(choices)
            # Only the side being saved is validated; the other keeps its
            # defaults when the page is shown again.
            sides.append(
                build_side(key, alias, site, choices, data if key == side else None)
            )
        saved = next(s for s in sides if s.key == side)
        valid = request_form.is_valid()
        valid = saved.form.is_valid() and valid
        if valid and request_form.cleaned_data["site"] is None:
            request_form.add_error(
                "site", gettext("Choose the site to save the overrides for.")
            )
            valid = False
        if valid and saved.backend is None:
            messages.error(
                request, saved.error or gettext("This backend cannot be used.")
            )
            valid = False
        if not valid:
            if request_form.errors or saved.form.errors:
                messages.error(
                    request, gettext("The overrides could not be saved: see below.")
                )
            return self.render_to_response(
                self.get_context_data(
                    request_form=request_form,
                    sides=sides,
                    site=site,
                    compare=bool(request_form.cleaned_data.get("compare")),
                )
            )
        site = request_form.cleaned_data["site"]
        if not can_change_settings(request.user, site):
            return forbidden(request)

        alias = saved.form.cleaned_data["alias"]
        try:
            values = saved.form.override_values(saved.backend)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            values = None
        if values is not None:
            settings = AISettings.for_site(site)
            settings.set_overrides(conf.CHAT, alias, values)
            settings.save()
            log(settings, "wagtail.edit", user=request.user, content_changed=True)
            edit_url = reverse(
                "wagtailsettings:edit",
                args=["wagtail_vector_index", "aisettings", site.pk],
            )
            messages.success(
                request,
                saved_message(alias, site, values),
                buttons=[messages.button(edit_url, gettext("Edit AI settings"))],
            )
        return redirect(
            chat_page_url(
                site=site,
                aliases={s.key: data.get(f"{s.key}-alias", "") for s in sides},
                compare=request_form.cleaned_data["compare"],
                system_prompt=request_form.cleaned_data["system_prompt"],
                message=request_form.cleaned_data["message"],
            )
        )


def saved_message(alias: str, site: Site, values: dict[str, Any]) -> str:
    if not values:
        return gettext(
            "Site “%(site)s” has no overrides for chat backend “%(alias)s” any "
            "more: every value matches its settings."
        ) % {"site": site, "alias": alias}
    listed = ", ".join(f"{name} = {value}" for name, value in values.items())
    # Translators: %(values)s lists the parameters, "temperature = 0.2, seed = 1".
    return gettext(
        "Saved the overrides of chat backend “%(alias)s” for site “%(site)s”: "
        "%(values)s."
    ) % {"alias": alias, "site": site, "values": listed}
