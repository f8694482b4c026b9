"""The project's error classes.

Provider failures are raised as subclasses of :class:`AIProviderError`. Each
carries the backend ``alias`` and ``model_id``, is chained (``__cause__``) to the
LiteLLM exception it replaces, and has a message written for an editor: it
never contains the provider's raw reply, a URL with credentials or an API key.

Messages are translated (Django's gettext) in the language active when the
error is raised: an admin page's, under the editor's preferred language.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from wagtail_vector_index.i18n import gettext
from wagtail_vector_index.i18n import gettext_lazy as _


class WagtailVectorIndexError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidAIBackendError(ImproperlyConfigured, WagtailVectorIndexError):
    """A backend cannot be built from its settings."""

    def __init__(self, alias: str, message: str) -> None:
        self.alias = alias
        super().__init__(
            # Translators: %(message)s is a sentence saying what is wrong.
            gettext('AI backend "%(alias)s": %(message)s')
            % {"alias": alias, "message": message}
        )


#: One sentence per kind of backend ("chat", "embedding"), so that
#: translators never assemble "chat backend" from parts.
_UNKNOWN_ALIAS = {
    "chat": _("no chat backend with this alias is configured (configured: %(known)s)."),
    "embedding": _(
        "no embedding backend with this alias is configured (configured: %(known)s)."
    ),
    None: _(
        "no %(kind)s backend with this alias is configured (configured: %(known)s)."
    ),
}


class UnknownBackendAliasError(InvalidAIBackendError):
    """A backend alias that is not configured was asked for."""

    def __init__(self, alias: str, kind: str, known: list[str]) -> None:
        self.kind = kind
        self.known = known
        known_text = ", ".join(f'"{name}"' for name in known) or gettext("none")
        template = _UNKNOWN_ALIAS.get(kind, _UNKNOWN_ALIAS[None])
        super().__init__(alias, template % {"kind": kind, "known": known_text})


class AIVisionNotSupportedError(InvalidAIBackendError):
    """A chat alias that cannot take images was asked to look at one (no
    request is sent)."""

    def __init__(self, alias: str, model_id: str, *, known: bool) -> None:
        self.model_id = model_id
        values = {"model": model_id}
        if known:
            # Translators: %(model)s is the name of an AI model.
            message = gettext(
                'its model "%(model)s" cannot take images, so it cannot '
                "describe them. Choose a chat alias whose model takes images "
                'in WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"]["ALIAS"].'
            )
        else:
            # Translators: %(model)s is the name of an AI model;
            # CONFIG["SUPPORTS_VISION"] is a setting, as written.
            message = gettext(
                'it is not known whether its model "%(model)s" takes images. '
                'If it does, set CONFIG["SUPPORTS_VISION"] = True for this '
                "alias; if not, choose another alias to describe images."
            )
        super().__init__(alias, message % values)


class AIProviderError(WagtailVectorIndexError):
    """A call to the model provider failed.

    ``str(error)`` is safe to show to an editor. ``error.__cause__`` keeps the
    original exception for logs.
    """

    #: What went wrong, in words for an editor; subclasses override it (with
    #: ``gettext_lazy``, so that it is translated when the error is raised).
    reason = _("The AI provider could not complete the request.")
    #: Whether trying again later may succeed.
    retryable = False
    #: Seconds the provider asked to wait before trying again (its
    #: ``Retry-After`` header), when it said.
    retry_after: float | None = None
    #: How many requests the call made before giving up (retries and
    #: fallbacks included; see ``CONFIG["MAX_RETRIES"]``).
    attempts = 1

    def __init__(self, *, alias: str, model_id: str, detail: str | None = None) -> None:
        self.alias = alias
        self.model_id = model_id
        self.detail = detail
        values = {"reason": self.reason, "alias": alias, "model": model_id}
        if detail:
            values["detail"] = detail
            # Translators: %(reason)s is one of the sentences below (the
            # provider rejected the credentials...), %(detail)s more about it.
            message = gettext(
                '%(reason)s (backend "%(alias)s", model "%(model)s"): %(detail)s'
            )
        else:
            message = gettext('%(reason)s (backend "%(alias)s", model "%(model)s")')
        super().__init__(message % values)


class AIAuthenticationError(AIProviderError):
    reason = _(
        "The AI provider rejected the credentials. Check the API key configured "
        "for this backend."
    )


class AIRateLimitError(AIProviderError):
    reason = _("The AI provider is rate limiting requests. Try again shortly.")
    retryable = True


class AITimeoutError(AIProviderError):
    reason = _("The AI provider did not answer in time.")
    retryable = True


class AIConnectionError(AIProviderError):
    reason = _("The AI provider could not be reached.")
    retryable = True


class AIServiceUnavailableError(AIProviderError):
    reason = _("The AI provider reported an internal error or is unavailable.")
    retryable = True


class AIBadRequestError(AIProviderError):
    reason = _("The AI provider refused the request as invalid.")


class AIContextWindowExceededError(AIBadRequestError):
    reason = _("The input is too long for the model's context window.")


class AIInvalidResponseError(AIProviderError):
    reason = _("The AI provider sent a reply that could not be understood.")
    retryable = True


class AICircuitOpenError(AIProviderError):
    """The backend failed several times in a row and is paused (its circuit
    breaker is open): the call was not sent. ``retry_in`` is the seconds
    until one call may try it again."""

    reason = _(
        "This AI backend failed several times in a row and is paused; it will "
        "be tried again shortly."
    )
    retryable = True
    attempts = 0

    def __init__(
        self,
        *,
        alias: str,
        model_id: str,
        detail: str | None = None,
        retry_in: float | None = None,
    ) -> None:
        self.retry_in = retry_in
        self.retry_after = retry_in
        super().__init__(alias=alias, model_id=model_id, detail=detail)


class AIBudgetExceededError(WagtailVectorIndexError):
    """A budget is used up: the call was refused before reaching the provider.

    ``site`` is the site whose budget it is (``None``: calls without a site,
    or a user's daily budget), ``limit`` and ``spent`` are in ``unit``
    (``"USD"`` or ``"tokens"``; ``spent`` counts the calls in flight),
    ``needed`` what this call was expected to spend (``None``: not known),
    ``period`` is ``"month"`` or ``"day"`` and ``user`` the user of a daily
    user budget. ``str(error)`` is safe to show to an editor.
    """

    def __init__(
        self,
        *,
        site: object = None,
        limit: object,
        spent: object,
        unit: str,
        period: str = "month",
        user: object = None,
        needed: object = None,
    ) -> None:
        self.site = site
        self.limit = limit
        self.spent = spent
        self.needed = needed
        self.unit = unit
        self.period = period
        self.user = user
        values = {"limit": _amount(limit, unit), "spent": _amount(spent, unit)}
        if user is not None:
            # Translators: %(limit)s and %(spent)s are "$5.00" or "12000 tokens".
            template = gettext(
                "Your daily AI budget is used up (%(spent)s of %(limit)s spent). "
                "Try again tomorrow."
            )
        elif site is not None:
            values["site"] = (
                getattr(site, "site_name", "") or getattr(site, "hostname", "") or site
            )
            template = gettext(
                "The monthly AI budget of site %(site)s is used up (%(spent)s of "
                "%(limit)s spent, including calls in progress). Ask an "
                "administrator to raise it under Settings › AI settings."
            )
        else:
            template = gettext(
                "The monthly AI budget for calls without a site is used up "
                "(%(spent)s of %(limit)s spent, including calls in progress)."
            )
        message = template % values
        if needed is not None and spent < limit:  # type: ignore[operator]
            # Room is left, but not enough for this call.
            message += " " + gettext("This call would need about %(needed)s.") % {
                "needed": _amount(needed, unit)
            }
        super().__init__(message)


def _amount(value: object, unit: str) -> str:
    if unit == "USD":
        # Translators: an amount in US dollars.
        return gettext("$%(amount)s") % {"amount": f"{float(value):.2f}"}  # type: ignore[arg-type]
    return gettext("%(count)s tokens") % {"count": value}


class VectorStorageError(WagtailVectorIndexError):
    """A vector storage outside the application database (a Qdrant server,
    say) failed: it could not be reached, refused the credentials, did not
    answer in time or refused the request.

    ``storage`` names the storage (its class name), ``where`` where it is
    (a URL without credentials, or a local path), ``index_name`` the index
    concerned (``None``: none in particular). ``str(error)`` is safe to show
    to an editor: it never contains an API key. ``error.__cause__`` keeps the
    client's exception for logs.
    """

    #: What went wrong, in words for an editor; subclasses override it.
    reason = _("The vector storage could not complete the request.")
    #: Whether trying again later may succeed.
    retryable = False

    def __init__(
        self,
        *,
        storage: str,
        where: str,
        index_name: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.storage = storage
        self.where = where
        self.index_name = index_name
        self.detail = detail
        values = {"reason": self.reason, "storage": storage, "where": where}
        if detail:
            values["detail"] = detail
            # Translators: %(reason)s is one of the sentences below (the
            # storage could not be reached...), %(storage)s the name of a
            # Python class, %(where)s a URL or a folder, %(detail)s more
            # about what happened.
            message = gettext("%(reason)s (%(storage)s at %(where)s): %(detail)s")
        else:
            message = gettext("%(reason)s (%(storage)s at %(where)s)")
        message = message % values
        if index_name:
            # Translators: %(message)s is the sentence above.
            message = gettext('Vector index "%(index)s": %(message)s') % {
                "index": index_name,
                "message": message,
            }
        super().__init__(message)


class VectorStorageConnectionError(VectorStorageError):
    reason = _("The vector storage could not be reached.")
    retryable = True


class VectorStorageAuthenticationError(VectorStorageError):
    reason = _(
        "The vector storage rejected the credentials. Check the API key "
        "configured for it."
    )


class VectorStorageTimeoutError(VectorStorageError):
    reason = _("The vector storage did not answer in time.")
    retryable = True
