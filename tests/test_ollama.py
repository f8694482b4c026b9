"""Local models through LiteLLM's Ollama providers, over HTTP to 127.0.0.1."""

import pytest
from django.test import override_settings

from tests.providers import DEFAULT_REPLY, fake_vector
from tests.utils import chat_backend_settings, embedding_backend_settings
from wagtail_vector_index import ai, exceptions

MESSAGES = [{"role": "user", "content": "Tell me about tomatoes."}]


@pytest.fixture
def ollama(provider):
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {
                "default": chat_backend_settings(
                    provider,
                    model="ollama/llama3",
                    DEFAULT_PARAMETERS={"temperature": 0.3},
                ),
                "chat": chat_backend_settings(provider, model="ollama_chat/llama3"),
            },
            "EMBEDDING_BACKENDS": {
                "default": embedding_backend_settings(
                    provider, model="ollama/nomic-embed-text", BATCH_SIZE=2
                )
            },
        }
    ):
        yield provider


def test_generate(ollama):
    response = ai.get_chat_backend().chat(messages=MESSAGES)

    assert response.text == DEFAULT_REPLY
    (request,) = ollama.requests_to("/api/generate")
    assert request.body["model"] == "llama3"
    assert "Tell me about tomatoes." in request.body["prompt"]
    assert request.body["options"]["temperature"] == 0.3


def test_generate_streaming(ollama):
    parts = list(ai.get_chat_backend().chat(messages=MESSAGES, stream=True))

    assert "".join(part["content"] for part in parts) == DEFAULT_REPLY
    assert len(parts) > 1


async def test_chat_endpoint_async_streaming(ollama):
    stream = await ai.get_chat_backend("chat").achat(messages=MESSAGES, stream=True)

    parts = [part async for part in stream]
    assert "".join(part["content"] for part in parts) == DEFAULT_REPLY
    (request,) = ollama.requests_to("/api/chat")
    assert request.body["messages"][-1]["content"] == "Tell me about tomatoes."


def test_embed_in_batches_and_order(ollama):
    inputs = ["tomato", "basil", "garlic", "onion", "pepper"]

    vectors = list(ai.get_embedding_backend().embed(inputs))

    assert vectors == [fake_vector(text) for text in inputs]
    sent = ollama.requests_to("/api/embed")
    assert [r.body["input"] for r in sent] == [
        ["tomato", "basil"],
        ["garlic", "onion"],
        ["pepper"],
    ]
    assert all(r.body["model"] == "nomic-embed-text" for r in sent)


async def test_aembed(ollama):
    inputs = ["tomato", "basil", "garlic"]
    assert await ai.get_embedding_backend().aembed(inputs) == [
        fake_vector(text) for text in inputs
    ]


def test_stream_cut_off(ollama):
    ollama.fail("cut")
    with pytest.raises(exceptions.AIInvalidResponseError, match="cut off") as caught:
        list(ai.get_chat_backend().chat(messages=MESSAGES, stream=True))
    assert caught.value.alias == "default"
    assert caught.value.model_id == "ollama/llama3"


def test_unknown_ollama_model_needs_no_server_for_its_description(ollama):
    # Building the backend must not ask the Ollama server about the model.
    backend = ai.get_embedding_backend()
    assert backend.config.token_limit == 8191
    assert ollama.requests_to("/api/show") == []
