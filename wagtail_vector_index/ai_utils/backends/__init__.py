"""Build backends from settings dicts.

Most code should call :func:`wagtail_vector_index.ai.get_chat_backend`, which
reads the project's settings. These lower-level factories take the settings of
one backend directly, which suits tests and code that configures backends
itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.module_loading import import_string

from wagtail_vector_index.ai_utils.backends.base import (
    BaseBackend,
    BaseChatBackend,
    BaseEmbeddingBackend,
)
from wagtail_vector_index.exceptions import InvalidAIBackendError
from wagtail_vector_index.i18n import gettext as _

__all__ = [
    "InvalidAIBackendError",
    "get_backend",
    "get_chat_backend",
    "get_embedding_backend",
    "import_backend_class",
]

_BASES: dict[str, type[BaseBackend]] = {
    "chat": BaseChatBackend,
    "embedding": BaseEmbeddingBackend,
}


def import_backend_class(path: Any, *, kind: str, alias: str) -> type[BaseBackend]:
    """Import the ``CLASS`` of a backend and check it is of the right kind."""
    if not isinstance(path, str) or not path:
        raise InvalidAIBackendError(alias, _('"CLASS" must be a dotted import path.'))
    try:
        backend_class = import_string(path)
    except ImportError as error:
        raise InvalidAIBackendError(
            alias,
            _('"CLASS" %(path)s cannot be imported (%(error)s).')
            % {"path": repr(path), "error": error},
        ) from error
    base = _BASES[kind]
    if not isinstance(backend_class, type) or not issubclass(backend_class, base):
        raise InvalidAIBackendError(
            alias,
            _('"CLASS" %(path)s is not a subclass of %(base)s.')
            % {"path": repr(path), "base": base.__name__},
        )
    return backend_class


def get_backend(*, backend_dict: Mapping[str, Any], backend_id: str, kind: str) -> Any:
    """Build the backend described by ``backend_dict`` (``{"CLASS", "CONFIG"}``)."""
    if not isinstance(backend_dict, Mapping):
        raise InvalidAIBackendError(
            backend_id, _("the backend settings must be a dict.")
        )
    backend_class = import_backend_class(
        backend_dict.get("CLASS"), kind=kind, alias=backend_id
    )
    config = backend_dict.get("CONFIG", {})
    if not isinstance(config, Mapping):
        raise InvalidAIBackendError(backend_id, _('"CONFIG" must be a dict.'))
    return backend_class.from_settings(backend_id, config)


def get_chat_backend(
    *, backend_dict: Mapping[str, Any], backend_id: str
) -> BaseChatBackend:
    """Build a chat backend from one entry of ``CHAT_BACKENDS``."""
    return get_backend(backend_dict=backend_dict, backend_id=backend_id, kind="chat")


def get_embedding_backend(
    *, backend_dict: Mapping[str, Any], backend_id: str
) -> BaseEmbeddingBackend:
    """Build an embedding backend from one entry of ``EMBEDDING_BACKENDS``."""
    return get_backend(
        backend_dict=backend_dict, backend_id=backend_id, kind="embedding"
    )
