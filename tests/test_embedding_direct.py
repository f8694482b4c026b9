"""OpenAI-shaped embedding requests without LiteLLM's reply objects (issue 12,
item 1): sent with the OpenAI SDK, the raw JSON read and the base64 vectors
decoded here, where LiteLLM would add nothing; through LiteLLM otherwise.

The fault matrix (tests/test_fault_matrix.py) runs every provider failure
through this path too (its embedding backends qualify), with the same
exceptions and messages as LiteLLM's path.
"""

import asyncio

import litellm
import pytest
from django.test import override_settings

from tests.providers import fake_array
from tests.utils import embedding_backend_settings
from wagtail_vector_index import ai

DIMENSIONS = 1536
INPUTS = ["alpha", "beta", "gamma"]


def settings_for(provider, **config):
    config.setdefault("EMBEDDING_OUTPUT_DIMENSIONS", DIMENSIONS)
    return {
        "EMBEDDING_BACKENDS": {
            "default": embedding_backend_settings(provider, **config)
        }
    }


@pytest.fixture
def litellm_calls(monkeypatch):
    """Calls that went through ``litellm.embedding`` / ``aembedding``."""
    calls = []
    real, areal = litellm.embedding, litellm.aembedding

    def embedding(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    async def aembedding(**kwargs):
        calls.append(kwargs)
        return await areal(**kwargs)

    monkeypatch.setattr(litellm, "embedding", embedding)
    monkeypatch.setattr(litellm, "aembedding", aembedding)
    return calls


def expected():
    return [fake_array(text, DIMENSIONS) for text in INPUTS]


def assert_vectors(matrix):
    assert matrix.shape == (len(INPUTS), DIMENSIONS)
    for row, vector in zip(matrix, expected(), strict=True):
        assert row.tobytes() == vector.tobytes()


def test_openai_shaped_requests_skip_litellm(provider, litellm_calls):
    provider.state.dimensions = DIMENSIONS
    with override_settings(WAGTAIL_VECTOR_INDEX=settings_for(provider)):
        backend = ai.get_embedding_backend()
        assert_vectors(backend.embed_matrix(INPUTS))
        # Two event loops one after the other: each gets its own client.
        assert_vectors(asyncio.run(backend.aembed_matrix(INPUTS)))
        assert_vectors(asyncio.run(backend.aembed_matrix(INPUTS)))
    assert litellm_calls == []
    requests = provider.requests_to("/v1/embeddings")
    assert len(requests) == 3
    for request in requests:
        assert request.body["encoding_format"] == "base64"
        assert request.body["model"] == "test-embed"  # LiteLLM's "openai/" gone.
        assert request.headers["authorization"].startswith("Bearer ")


def test_parameters_reach_the_provider(provider, litellm_calls):
    provider.state.dimensions = DIMENSIONS
    config = {"DEFAULT_PARAMETERS": {"user": "editor-7", "dimensions": DIMENSIONS}}
    with override_settings(WAGTAIL_VECTOR_INDEX=settings_for(provider, **config)):
        ai.get_embedding_backend().embed_matrix(INPUTS)
    (request,) = provider.requests_to("/v1/embeddings")
    assert request.body["user"] == "editor-7"
    assert request.body["dimensions"] == DIMENSIONS
    assert litellm_calls == []


@pytest.mark.parametrize(
    "case",
    ["switched off", "unknown parameter", "litellm callback", "floats asked"],
)
def test_through_litellm_where_it_adds_something(
    provider, litellm_calls, monkeypatch, case
):
    provider.state.dimensions = DIMENSIONS
    config = {}
    if case == "switched off":
        config["EMBEDDING_DIRECT"] = False
    elif case == "unknown parameter":
        config["DEFAULT_PARAMETERS"] = {"metadata": {"team": "web"}}
    elif case == "litellm callback":
        seen = []
        monkeypatch.setattr(litellm, "success_callback", [lambda *a: seen.append(a)])
    elif case == "floats asked":
        config["EMBEDDING_BASE64"] = False
    with override_settings(WAGTAIL_VECTOR_INDEX=settings_for(provider, **config)):
        matrix = ai.get_embedding_backend().embed_matrix(INPUTS)
    assert_vectors(matrix)
    assert len(litellm_calls) == 1
