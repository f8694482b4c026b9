"""The offline backends' first import path, kept working.

Settings written for it (``"CLASS": "wagtail_vector_index.ai_utils.backends.echo.
EchoChatBackend"`` and ``....echo.HashingEmbeddingBackend``, as the README showed)
go on working: the classes now live in
:mod:`wagtail_vector_index.ai_utils.backends.offline`.
"""

from wagtail_vector_index.ai_utils.backends.offline import (
    EchoChatBackend,
    HashingEmbeddingBackend,
)

__all__ = ["EchoChatBackend", "HashingEmbeddingBackend"]
