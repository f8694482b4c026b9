"""The backend API without a server: input validation, configuration, and
LiteLLM's ``mock_response`` for the response types."""

import pytest
from django.test import override_settings
from wagtail.models import Site

from wagtail_vector_index import ai, exceptions
from wagtail_vector_index.ai_utils.backends import (
    InvalidAIBackendError,
    get_chat_backend,
    get_embedding_backend,
)
from wagtail_vector_index.ai_utils.backends.litellm import (
    LiteLLMChatBackend,
    LiteLLMEmbeddingBackend,
    scrub,
)

LITELLM_CHAT = "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMChatBackend"
LITELLM_EMBEDDING = (
    "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMEmbeddingBackend"
)


@pytest.fixture
def chat():
    return get_chat_backend(
        backend_dict={
            "CLASS": LITELLM_CHAT,
            "CONFIG": {
                "MODEL_ID": "gpt-4o",
                "DEFAULT_PARAMETERS": {"temperature": 0.8},
            },
        },
        backend_id="default",
    )


@pytest.fixture
def embedding():
    return get_embedding_backend(
        backend_dict={
            "CLASS": LITELLM_EMBEDDING,
            "CONFIG": {"MODEL_ID": "text-embedding-3-small"},
        },
        backend_id="search",
    )


# -- configuration --------------------------------------------------------------


def test_config_from_settings_and_model_map(chat, embedding):
    assert isinstance(chat, LiteLLMChatBackend)
    assert chat.config.alias == "default"
    assert chat.config.model_id == "gpt-4o"
    assert chat.config.token_limit == 128000  # From LiteLLM's model map.
    assert chat.config.default_parameters == {"temperature": 0.8}
    assert isinstance(embedding, LiteLLMEmbeddingBackend)
    assert embedding.config.token_limit == 8191
    assert embedding.embedding_output_dimensions == 1536


def test_configured_limits_win_over_the_model_map():
    backend = get_embedding_backend(
        backend_dict={
            "CLASS": LITELLM_EMBEDDING,
            "CONFIG": {
                "MODEL_ID": "text-embedding-3-small",
                "TOKEN_LIMIT": 2048,
                "EMBEDDING_OUTPUT_DIMENSIONS": 256,
            },
        },
        backend_id="default",
    )
    assert backend.config.token_limit == 2048
    assert backend.embedding_output_dimensions == 256


@pytest.mark.parametrize(
    ("backend_dict", "message"),
    [
        ({"CLASS": "no.such.Backend", "CONFIG": {}}, "cannot be imported"),
        ({"CLASS": LITELLM_EMBEDDING, "CONFIG": {}}, "not a subclass"),
        ({"CLASS": LITELLM_CHAT, "CONFIG": {}}, "MODEL_ID"),
        ({"CLASS": LITELLM_CHAT, "CONFIG": []}, "CONFIG"),
        ({"CLASS": LITELLM_CHAT, "CONFIG": {"MODEL_ID": "openai/x"}}, "TOKEN_LIMIT"),
    ],
)
def test_invalid_backend_settings(backend_dict, message):
    with pytest.raises(InvalidAIBackendError, match=message) as caught:
        get_chat_backend(backend_dict=backend_dict, backend_id="writer")
    assert caught.value.alias == "writer"
    assert '"writer"' in str(caught.value)


def test_unknown_embedding_dimensions_are_a_clear_error():
    with pytest.raises(InvalidAIBackendError, match="EMBEDDING_OUTPUT_DIMENSIONS"):
        get_embedding_backend(
            backend_dict={
                "CLASS": LITELLM_EMBEDDING,
                "CONFIG": {
                    "MODEL_ID": "vertex_ai/textembedding-gecko",
                    "TOKEN_LIMIT": 2048,
                },
            },
            backend_id="default",
        )


def test_unknown_alias():
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {
                "default": {"CLASS": LITELLM_CHAT, "CONFIG": {"MODEL_ID": "gpt-4o"}}
            }
        }
    ):
        with pytest.raises(exceptions.UnknownBackendAliasError) as caught:
            ai.get_chat_backend("writer")
    assert '"writer"' in str(caught.value)
    assert '"default"' in str(caught.value)


def test_backends_are_reused_until_settings_change():
    first = ai.get_chat_backend()
    assert ai.get_chat_backend() is first
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {
                "default": {"CLASS": LITELLM_CHAT, "CONFIG": {"MODEL_ID": "gpt-4o"}}
            }
        }
    ):
        assert ai.get_chat_backend().config.model_id == "gpt-4o"
    assert ai.get_chat_backend().config.model_id == "gpt-3.5-turbo"


@pytest.mark.django_db
def test_a_site_without_overrides_gets_the_settings_backend(rf):
    request = rf.get("/")
    backend = ai.get_chat_backend("default", request=request)
    settings_backend = ai.get_chat_backend()
    # The settings' backend and parameters, no site layer; a copy only so
    # that its calls are recorded (and budgeted) under the request's site.
    assert type(backend) is type(settings_backend)
    assert backend.config == settings_backend.config
    assert backend.parameters is settings_backend.parameters
    assert backend.effective_parameters() == settings_backend.effective_parameters()
    assert backend.attribution.site_id == Site.find_for_request(request).pk
    assert ai.get_embedding_backend(site=None).config.model_id == (
        "text-embedding-ada-002"
    )


# -- bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("messages", "error", "match"),
    [
        ([], ValueError, "at least one message"),
        ("hello", TypeError, "list of"),
        (None, TypeError, "list of"),
        (["hello"], TypeError, r"messages\[0\] must be a dict"),
        ([{"content": "hi"}], ValueError, r"messages\[0\] has no 'role'"),
        ([{"role": "user"}], ValueError, r"messages\[0\] has no 'content'"),
        (
            [{"role": "user", "content": "a"}, {"role": "user", "content": 3}],
            TypeError,
            r"messages\[1\]\[\"content\"\] must be a string",
        ),
        ([{"role": "", "content": "hi"}], TypeError, "role"),
    ],
)
def test_bad_messages(chat, messages, error, match):
    with pytest.raises(error, match=match):
        chat.chat(messages=messages, mock_response="unused")


async def test_bad_messages_async(chat):
    with pytest.raises(ValueError, match="at least one message"):
        await chat.achat(messages=[])


@pytest.mark.parametrize(
    ("inputs", "match"),
    [
        ("one text", "not a single string"),
        (["fine", 3], r"inputs\[1\] must be a string, not int"),
        ([None], r"inputs\[0\] must be a string"),
        (42, "list of strings, not int"),
    ],
)
def test_bad_embedding_inputs(embedding, inputs, match):
    with pytest.raises(TypeError, match=match):
        embedding.embed(inputs)


async def test_bad_embedding_inputs_async(embedding):
    with pytest.raises(TypeError, match="not a single string"):
        await embedding.aembed("one text")


def test_reserved_parameters_are_refused(chat):
    with pytest.raises(TypeError, match="model"):
        chat.chat(messages=[{"role": "user", "content": "hi"}], model="other")


@pytest.mark.parametrize("name", ["request", "site"])
def test_scope_arguments_are_not_model_parameters(chat, embedding, name):
    # Sent on, a request object fails in the provider's client as "not JSON
    # serializable", reported as an unreadable reply.
    with pytest.raises(TypeError, match="not a model parameter"):
        chat.chat(messages=[{"role": "user", "content": "hi"}], **{name: object()})
    with pytest.raises(TypeError, match="not a model parameter"):
        list(embedding.embed(["hi"], **{name: object()}))


# -- responses (LiteLLM's mock_response) -------------------------------------------


def test_response_with_usage_and_cost(chat):
    response = chat.chat(
        messages=[{"role": "user", "content": "hi"}], mock_response="Hi there!"
    )
    assert response.choices == ["Hi there!"]
    assert str(response) == "Hi there!"
    assert response.usage.prompt_tokens > 0
    assert response.usage.completion_tokens > 0
    assert response.cost > 0
    assert response.model_id == "gpt-4o"


def test_unpriced_model_is_looked_up_once(monkeypatch):
    import litellm

    backend = get_chat_backend(
        backend_dict={
            "CLASS": LITELLM_CHAT,
            "CONFIG": {"MODEL_ID": "openai/unpriced", "TOKEN_LIMIT": 4096},
        },
        backend_id="default",
    )
    lookups = []
    real = litellm.cost_per_token

    def counting(**kwargs):
        lookups.append(kwargs["model"])
        return real(**kwargs)

    monkeypatch.setattr(litellm, "cost_per_token", counting)
    messages = [{"role": "user", "content": "hi"}]
    for _ in range(3):
        response = backend.chat(messages=messages, mock_response="Hi")
        assert response.usage.total_tokens > 0
        assert response.cost is None
    assert lookups == ["openai/unpriced"]


def test_stream_with_mock_response(chat):
    stream = chat.chat(
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        mock_response="one two three",
    )
    assert stream.text() == "one two three"


async def test_async_stream_with_mock_response(chat):
    stream = await chat.achat(
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        mock_response="one two three",
    )
    assert "".join([part["content"] async for part in stream]) == "one two three"


def test_mocked_exception_is_translated(chat):
    import litellm

    error = litellm.RateLimitError(
        message="slow down", llm_provider="openai", model="gpt-4o"
    )
    with pytest.raises(exceptions.AIRateLimitError) as caught:
        chat.chat(messages=[{"role": "user", "content": "hi"}], mock_response=error)
    assert caught.value.__cause__ is error


def test_scrub_hides_credentials():
    text = "Incorrect API key provided: sk-abc123456789. Bearer xyz-123 api_key=foo"
    assert scrub(text) == "Incorrect API key provided: [hidden]. [hidden] [hidden]"
    assert scrub("value my-secret here", ["my-secret"]) == "value [hidden] here"
    assert len(scrub("x" * 1000)) == 300
