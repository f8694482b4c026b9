import os

import pytest

from tests.providers import ProviderServer

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

OPENAI_CLASS = "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMChatBackend"
OPENAI_EMBEDDING_CLASS = (
    "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMEmbeddingBackend"
)
TEST_API_KEY = "sk-test-secret-key-1234"


@pytest.fixture(scope="session")
def _provider_server():
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
def provider(_provider_server, monkeypatch):
    """The loopback provider, reset, with ``OPENAI_API_KEY`` set for LiteLLM."""
    _provider_server.reset()
    monkeypatch.setenv("OPENAI_API_KEY", TEST_API_KEY)
    yield _provider_server
    _provider_server.reset()


def _backend_settings(provider, backend_class, model, defaults, config):
    """A backend entry whose model talks to ``provider`` over HTTP (the Ollama
    API for ``ollama*/`` models, the OpenAI API otherwise)."""
    parameters = {"api_base": provider.openai_base, "timeout": 2}
    if model.startswith(("ollama/", "ollama_chat/")):
        parameters["api_base"] = provider.url
    elif backend_class == OPENAI_CLASS:
        parameters["max_retries"] = 0  # Failure tests must not wait for retries.
    parameters.update(config.pop("DEFAULT_PARAMETERS", {}))
    return {
        "CLASS": backend_class,
        "CONFIG": {
            "MODEL_ID": model,
            **defaults,
            "DEFAULT_PARAMETERS": parameters,
            **config,
        },
    }


def chat_backend_settings(provider, model="openai/test-chat", **config):
    """A ``CHAT_BACKENDS`` entry that talks to ``provider`` over HTTP."""
    return _backend_settings(
        provider, OPENAI_CLASS, model, {"TOKEN_LIMIT": 4096}, config
    )


def embedding_backend_settings(provider, model="openai/test-embed", **config):
    """An ``EMBEDDING_BACKENDS`` entry that talks to ``provider`` over HTTP."""
    defaults = {"TOKEN_LIMIT": 8191, "EMBEDDING_OUTPUT_DIMENSIONS": 8}
    return _backend_settings(provider, OPENAI_EMBEDDING_CLASS, model, defaults, config)


@pytest.fixture
def content_type(db):
    """A content type id for chunks written straight into a storage
    (``tests.storage.fill``)."""
    from django.contrib.contenttypes.models import ContentType

    from wagtail_vector_index.models import IndexState

    return ContentType.objects.get_for_model(IndexState).pk
