"""Translation of messages that may be made outside a Django project.

The backends also work in a script without Django settings (the benchmarks
use them so). Django's ``gettext`` reads the ``USE_I18N`` setting, so there
an error's message would raise ``ImproperlyConfigured`` in place of the
typed error being made. These functions give the English text when Django is
not configured, and Django's translation otherwise. Also the English name
of a language, for prompts.
"""

from __future__ import annotations

from django.conf import settings
from django.utils.functional import lazy
from django.utils.translation import get_language_info
from django.utils.translation import gettext as _django_gettext


def gettext(message: str) -> str:
    """``message`` translated into the active language (English, without
    Django settings)."""
    if not settings.configured:
        return message
    return _django_gettext(message)


#: :func:`gettext`, evaluated when the text is used.
gettext_lazy = lazy(gettext, str)


def language_name(code: str) -> str:
    """The English name of the language of ``code`` (``fr`` -> ``French``;
    ``fr-ca`` without a name of its own: French), else ``code``: what the
    editor features' prompts name (models understand it)."""
    for candidate in (code, code.split("-")[0]):
        try:
            return get_language_info(candidate)["name"]
        except KeyError:
            continue
    return code
