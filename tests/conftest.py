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


def chat_backend_settings(provider, model="openai/test-chat", **config):
    """A ``CHAT_BACKENDS`` entry that talks to ``provider`` over HTTP."""
    parameters = {"api_base": provider.openai_base, "timeout": 2, "max_retries": 0}
    if model.startswith(("ollama/", "ollama_chat/")):
        parameters = {"api_base": provider.url, "timeout": 2}
    parameters.update(config.pop("DEFAULT_PARAMETERS", {}))
    return {
        "CLASS": OPENAI_CLASS,
        "CONFIG": {
            "MODEL_ID": model,
            "TOKEN_LIMIT": 4096,
            "DEFAULT_PARAMETERS": parameters,
            **config,
        },
    }


def embedding_backend_settings(provider, model="openai/test-embed", **config):
    """An ``EMBEDDING_BACKENDS`` entry that talks to ``provider`` over HTTP."""
    parameters = {"api_base": provider.openai_base, "timeout": 2}
    if model.startswith("ollama/"):
        parameters = {"api_base": provider.url, "timeout": 2}
    parameters.update(config.pop("DEFAULT_PARAMETERS", {}))
    return {
        "CLASS": OPENAI_EMBEDDING_CLASS,
        "CONFIG": {
            "MODEL_ID": model,
            "TOKEN_LIMIT": 8191,
            "EMBEDDING_OUTPUT_DIMENSIONS": 8,
            "DEFAULT_PARAMETERS": parameters,
            **config,
        },
    }
