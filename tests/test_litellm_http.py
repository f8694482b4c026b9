"""LiteLLM backends against a real HTTP server on 127.0.0.1 (OpenAI-shaped).

These tests assert what goes over the wire: model, messages, parameters,
the Authorization header, the number of embedding requests and the order of
the vectors that come back.
"""

import pytest
from django.test import override_settings

from tests.providers import DEFAULT_REPLY, fake_vector
from tests.utils import TEST_API_KEY, chat_backend_settings, embedding_backend_settings
from wagtail_vector_index import ai
from wagtail_vector_index.ai_utils.types import AIResponse, AIStreamingResponse

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Say hello."},
]


def settings_for(provider, *, chat=None, embedding=None):
    return {
        "CHAT_BACKENDS": {"default": chat or chat_backend_settings(provider)},
        "EMBEDDING_BACKENDS": {
            "default": embedding or embedding_backend_settings(provider)
        },
    }


@pytest.fixture
def configured(provider):
    """Both kinds of backend configured against the loopback provider."""
    chat = chat_backend_settings(provider, DEFAULT_PARAMETERS={"temperature": 0.25})
    embedding = embedding_backend_settings(
        provider, DEFAULT_PARAMETERS={"user": "wvi-tests"}
    )
    with override_settings(
        WAGTAIL_VECTOR_INDEX=settings_for(provider, chat=chat, embedding=embedding)
    ):
        yield provider


# -- chat ---------------------------------------------------------------------


def test_chat_sends_model_messages_parameters_and_key(configured):
    response = ai.get_chat_backend().chat(messages=MESSAGES)

    assert isinstance(response, AIResponse)
    assert response.choices == [DEFAULT_REPLY]
    assert response.text == DEFAULT_REPLY
    (request,) = configured.requests_to("/v1/chat/completions")
    assert request.body["model"] == "test-chat"
    assert request.body["messages"] == MESSAGES
    assert request.body["temperature"] == 0.25
    assert request.headers["authorization"] == f"Bearer {TEST_API_KEY}"
    assert response.usage.prompt_tokens == 5
    assert response.usage.completion_tokens == len(DEFAULT_REPLY.split())


def test_call_keyword_arguments_win_over_default_parameters(configured):
    ai.get_chat_backend().chat(messages=MESSAGES, temperature=1.5, max_tokens=12)

    (request,) = configured.requests_to("/v1/chat/completions")
    assert request.body["temperature"] == 1.5
    assert request.body["max_tokens"] == 12


def test_default_parameters_are_not_changed_by_a_call(configured):
    backend = ai.get_chat_backend()
    backend.chat(messages=MESSAGES, temperature=1.5)
    backend.chat(messages=MESSAGES)

    first, second = configured.requests_to("/v1/chat/completions")
    assert first.body["temperature"] == 1.5
    assert second.body["temperature"] == 0.25
    assert backend.config.default_parameters["temperature"] == 0.25


def test_streaming_yields_every_part_across_empty_deltas(configured):
    # The server sends a role-only first chunk and an empty delta after the
    # second word: the stream must go on to the end.
    stream = ai.get_chat_backend().chat(messages=MESSAGES, stream=True)

    assert isinstance(stream, AIStreamingResponse)
    parts = list(stream)
    assert [part["index"] for part in parts] == [0] * len(parts)
    assert "".join(part["content"] for part in parts) == DEFAULT_REPLY
    assert len(parts) == len(DEFAULT_REPLY.split())
    (request,) = configured.requests_to("/v1/chat/completions")
    assert request.body["stream"] is True
    assert request.body["temperature"] == 0.25
    # Token counts asked for and received in the last chunk.
    assert request.body["stream_options"] == {"include_usage": True}
    assert stream.usage.completion_tokens == len(DEFAULT_REPLY.split())
    assert stream.time_to_first_token is not None
    assert stream.total_time >= stream.time_to_first_token


async def test_async_chat(configured):
    response = await ai.get_chat_backend().achat(messages=MESSAGES, temperature=0.5)

    assert response.choices == [DEFAULT_REPLY]
    (request,) = configured.requests_to("/v1/chat/completions")
    assert request.body["temperature"] == 0.5
    assert request.headers["authorization"] == f"Bearer {TEST_API_KEY}"


async def test_async_streaming_with_async_for(configured):
    stream = await ai.get_chat_backend().achat(messages=MESSAGES, stream=True)

    parts = [part async for part in stream]
    assert "".join(part["content"] for part in parts) == DEFAULT_REPLY
    with pytest.raises(TypeError, match="async for"):
        list(stream)


def test_closing_a_stream_stops_reading(configured):
    stream = ai.get_chat_backend().chat(messages=MESSAGES, stream=True)
    iterator = iter(stream)
    first = next(iterator)
    stream.close()

    assert first["content"] == "Hello "
    assert stream.closed
    assert list(iterator) == []


def test_cost_is_reported_for_models_litellm_knows(provider):
    # gpt-3.5-turbo is in LiteLLM's price list; the server is the loopback one.
    chat = chat_backend_settings(provider, model="gpt-3.5-turbo")
    with override_settings(WAGTAIL_VECTOR_INDEX=settings_for(provider, chat=chat)):
        response = ai.get_chat_backend().chat(messages=MESSAGES)

    usage = response.usage
    expected = usage.prompt_tokens * 5e-07 + usage.completion_tokens * 1.5e-06
    assert response.cost == pytest.approx(expected)


def test_defaults_need_only_openai_api_key(provider, monkeypatch, settings):
    # No WAGTAIL_VECTOR_INDEX at all: gpt-3.5-turbo and text-embedding-ada-002
    # through LiteLLM, with the key from the environment. OPENAI_BASE_URL
    # points the OpenAI client at the loopback server instead of the internet.
    if hasattr(settings, "WAGTAIL_VECTOR_INDEX"):
        del settings.WAGTAIL_VECTOR_INDEX
    monkeypatch.setenv("OPENAI_BASE_URL", provider.openai_base)
    provider.state.dimensions = 1536

    answer = ai.get_chat_backend().chat(messages=MESSAGES)
    vectors = list(ai.get_embedding_backend().embed(["one", "two"]))

    assert answer.text == DEFAULT_REPLY
    (chat_request,) = provider.requests_to("/v1/chat/completions")
    (embedding_request,) = provider.requests_to("/v1/embeddings")
    assert chat_request.body["model"] == "gpt-3.5-turbo"
    assert embedding_request.body["model"] == "text-embedding-ada-002"
    for request in (chat_request, embedding_request):
        assert request.headers["authorization"] == f"Bearer {TEST_API_KEY}"
    assert [len(vector) for vector in vectors] == [1536, 1536]
    assert ai.get_chat_backend().config.token_limit == 16385
    assert ai.get_embedding_backend().config.token_limit == 8191
    assert ai.get_embedding_backend().embedding_output_dimensions == 1536


# -- embeddings ---------------------------------------------------------------


def test_embed_returns_vectors_in_input_order(configured):
    inputs = ["alpha", "beta", "gamma"]

    vectors = list(ai.get_embedding_backend().embed(inputs))

    assert vectors == [fake_vector(text) for text in inputs]
    (request,) = configured.requests_to("/v1/embeddings")
    assert request.body["input"] == inputs
    assert request.body["model"] == "test-embed"
    assert request.body["user"] == "wvi-tests"  # From DEFAULT_PARAMETERS.
    assert request.headers["authorization"] == f"Bearer {TEST_API_KEY}"


def test_embed_reorders_items_the_provider_returns_out_of_order(configured):
    configured.state.shuffle_embeddings = True
    inputs = ["alpha", "beta", "gamma"]

    assert list(ai.get_embedding_backend().embed(inputs)) == [
        fake_vector(text) for text in inputs
    ]


@pytest.mark.parametrize(("count", "batch_size", "requests"), [(7, 3, 3), (6, 3, 2)])
def test_embed_batches_to_the_batch_size(provider, count, batch_size, requests):
    embedding = embedding_backend_settings(provider, BATCH_SIZE=batch_size)
    inputs = [f"text number {i}" for i in range(count)]
    with override_settings(
        WAGTAIL_VECTOR_INDEX=settings_for(provider, embedding=embedding)
    ):
        vectors = list(ai.get_embedding_backend().embed(inputs))

    sent = provider.requests_to("/v1/embeddings")
    assert len(sent) == requests
    assert [text for r in sent for text in r.body["input"]] == inputs
    assert all(len(r.body["input"]) <= batch_size for r in sent)
    assert vectors == [fake_vector(text) for text in inputs]


def test_embed_batches_to_the_token_limit_per_request(provider):
    # Three inputs of about 400 tokens under a 1,000-token request budget: two
    # fit in one request, the third goes in a second.
    embedding = embedding_backend_settings(provider, BATCH_TOKEN_LIMIT=1000)
    inputs = [" ".join(["word"] * 400) + f" {i}" for i in range(3)]
    with override_settings(
        WAGTAIL_VECTOR_INDEX=settings_for(provider, embedding=embedding)
    ):
        list(ai.get_embedding_backend().embed(inputs))

    sent = provider.requests_to("/v1/embeddings")
    assert [len(r.body["input"]) for r in sent] == [2, 1]


async def test_aembed_runs_batches_concurrently_within_the_limit(provider):
    embedding = embedding_backend_settings(provider, BATCH_SIZE=2, MAX_CONCURRENCY=3)
    provider.state.latency = 0.1
    inputs = [f"text {i}" for i in range(20)]
    with override_settings(
        WAGTAIL_VECTOR_INDEX=settings_for(provider, embedding=embedding)
    ):
        vectors = await ai.get_embedding_backend().aembed(inputs)

    assert vectors == [fake_vector(text) for text in inputs]
    assert len(provider.requests_to("/v1/embeddings")) == 10
    assert provider.state.max_in_flight == 3


def test_empty_input_list_makes_no_request(configured):
    assert list(ai.get_embedding_backend().embed([])) == []
    assert configured.requests == []


async def test_empty_input_list_makes_no_request_async(configured):
    assert await ai.get_embedding_backend().aembed([]) == []
    assert configured.requests == []
