"""Embeddings decoded once, into float32 (issue 12, item 1).

OpenAI-compatible providers are asked for base64 vectors, which are decoded
straight into one float32 matrix; other providers send JSON numbers. Either
way the reply is checked, and ``embed_matrix`` / ``aembed_matrix`` give the
whole result as one ``(n, dimensions)`` float32 array.
"""

import asyncio
import warnings

import numpy as np
import pytest
from django.test import override_settings

from tests.providers import base64_vector, fake_array, fake_vector
from tests.utils import embedding_backend_settings
from wagtail_vector_index import ai, exceptions
from wagtail_vector_index.ai_utils.backends.base import BaseEmbeddingBackend
from wagtail_vector_index.ai_utils.backends.offline import HashingEmbeddingBackend

DIMENSIONS = 1536
INPUTS = ["alpha", "beta", "gamma", "delta"]


def embedding_settings(provider, **config) -> dict:
    config.setdefault("EMBEDDING_OUTPUT_DIMENSIONS", DIMENSIONS)
    return {
        "EMBEDDING_BACKENDS": {
            "default": embedding_backend_settings(provider, **config)
        }
    }


@pytest.fixture
def openai(provider):
    """An ``openai/`` embedding model on the loopback provider, 1,536 dims."""
    provider.state.dimensions = DIMENSIONS
    with override_settings(WAGTAIL_VECTOR_INDEX=embedding_settings(provider)):
        yield provider


def expected_matrix(texts, dimensions=DIMENSIONS) -> np.ndarray:
    return np.stack([fake_array(text, dimensions) for text in texts])


def encoding_formats(provider, path="/v1/embeddings") -> list:
    return [r.body.get("encoding_format") for r in provider.requests_to(path)]


def assert_bit_exact(matrix: np.ndarray, texts, dimensions=DIMENSIONS) -> None:
    assert matrix.dtype == np.float32
    assert matrix.shape == (len(texts), dimensions)
    # The very bytes the server encoded, not merely close values.
    assert matrix.astype("<f4").tobytes() == b"".join(
        fake_array(text, dimensions).astype("<f4").tobytes() for text in texts
    )


# -- what is asked for ----------------------------------------------------------


def test_openai_models_ask_for_base64_and_decode_it_bit_exact(openai):
    matrix = ai.get_embedding_backend().embed_matrix(INPUTS)

    assert encoding_formats(openai) == ["base64"]
    (request,) = openai.requests_to("/v1/embeddings")
    assert request.body["input"] == INPUTS
    assert_bit_exact(matrix, INPUTS)
    assert matrix.flags.writeable


def test_embed_still_gives_lists_of_floats_in_input_order(openai):
    vectors = list(ai.get_embedding_backend().embed(INPUTS))

    assert encoding_formats(openai) == ["base64"]
    assert all(type(vector) is list for vector in vectors)
    assert all(type(value) is float for value in vectors[0])
    # The same numbers a JSON reply carries: nothing lost on the way.
    assert vectors == [fake_vector(text, DIMENSIONS) for text in INPUTS]


async def test_aembed_matrix_decodes_base64_too(openai):
    matrix = await ai.get_embedding_backend().aembed_matrix(INPUTS)

    assert encoding_formats(openai) == ["base64"]
    assert_bit_exact(matrix, INPUTS)


def test_ollama_models_are_sent_no_encoding_format(provider):
    provider.state.dimensions = 8
    embedding = embedding_backend_settings(
        provider, model="ollama/nomic-embed-text", EMBEDDING_OUTPUT_DIMENSIONS=8
    )
    with override_settings(
        WAGTAIL_VECTOR_INDEX={"EMBEDDING_BACKENDS": {"default": embedding}}
    ):
        backend = ai.get_embedding_backend()
        matrix = backend.embed_matrix(INPUTS)
        vectors = list(backend.embed(INPUTS))

    sent = provider.requests_to("/api/embed")
    assert len(sent) == 2
    assert all("encoding_format" not in request.body for request in sent)
    assert not backend.asks_base64
    assert_bit_exact(matrix, INPUTS, 8)
    assert vectors == [fake_vector(text) for text in INPUTS]


def test_the_server_sends_float32_numbers_by_default(openai):
    # The loopback provider's JSON numbers are float32 values, as OpenAI's
    # are: float lists and base64 carry the same vector.
    for text in INPUTS:
        vector = fake_vector(text, DIMENSIONS)
        assert np.asarray(vector, dtype=np.float32).tolist() == vector


# -- the switch and the user's own encoding_format ------------------------------


def test_config_turns_base64_off(provider):
    provider.state.dimensions = DIMENSIONS
    with override_settings(
        WAGTAIL_VECTOR_INDEX=embedding_settings(provider, EMBEDDING_BASE64=False)
    ):
        backend = ai.get_embedding_backend()
        matrix = backend.embed_matrix(INPUTS)

    assert backend.config.embedding_base64 is False
    assert not backend.asks_base64
    assert encoding_formats(provider) == [None]
    assert_bit_exact(matrix, INPUTS)


def test_config_turns_base64_on_and_a_provider_that_refuses_says_so(provider):
    embedding = embedding_backend_settings(
        provider,
        model="ollama/nomic-embed-text",
        EMBEDDING_OUTPUT_DIMENSIONS=8,
        EMBEDDING_BASE64=True,
    )
    with override_settings(
        WAGTAIL_VECTOR_INDEX={"EMBEDDING_BACKENDS": {"default": embedding}}
    ):
        backend = ai.get_embedding_backend()
        assert backend.asks_base64
        # LiteLLM knows Ollama has no such parameter: a bad request, not a
        # reply that cannot be read.
        with pytest.raises(exceptions.AIBadRequestError):
            backend.embed_matrix(INPUTS)
    assert provider.requests_to("/api/embed") == []


def test_config_absent_decides_by_provider(provider):
    with override_settings(WAGTAIL_VECTOR_INDEX=embedding_settings(provider)):
        backend = ai.get_embedding_backend()
    assert backend.config.embedding_base64 is None
    assert backend.asks_base64


@pytest.mark.parametrize("where", ["settings", "call"])
def test_a_users_encoding_format_wins(openai, where):
    config = {}
    kwargs = {}
    if where == "settings":
        config["DEFAULT_PARAMETERS"] = {"encoding_format": "float"}
    else:
        kwargs["encoding_format"] = "float"
    with override_settings(WAGTAIL_VECTOR_INDEX=embedding_settings(openai, **config)):
        matrix = ai.get_embedding_backend().embed_matrix(INPUTS, **kwargs)
        vectors = list(ai.get_embedding_backend().embed(INPUTS, **kwargs))

    assert encoding_formats(openai) == ["float", "float"]
    assert_bit_exact(matrix, INPUTS)
    assert vectors == [fake_vector(text, DIMENSIONS) for text in INPUTS]


def test_a_users_base64_is_decoded_with_the_switch_off(openai):
    with override_settings(
        WAGTAIL_VECTOR_INDEX=embedding_settings(
            openai,
            EMBEDDING_BASE64=False,
            DEFAULT_PARAMETERS={"encoding_format": "base64"},
        )
    ):
        matrix = ai.get_embedding_backend().embed_matrix(INPUTS)

    assert encoding_formats(openai) == ["base64"]
    assert_bit_exact(matrix, INPUTS)


# -- replies that are not what was asked for ------------------------------------


def test_floats_when_base64_was_asked_are_accepted(openai):
    openai.state.base64_when_asked = False

    matrix = ai.get_embedding_backend().embed_matrix(INPUTS)
    vectors = list(ai.get_embedding_backend().embed(INPUTS))

    assert encoding_formats(openai) == ["base64", "base64"]
    assert_bit_exact(matrix, INPUTS)
    assert vectors == [fake_vector(text, DIMENSIONS) for text in INPUTS]


def test_base64_items_out_of_order_are_put_in_place(openai):
    openai.state.shuffle_embeddings = True

    assert_bit_exact(ai.get_embedding_backend().embed_matrix(INPUTS), INPUTS)


#: Every bad reply to a base64 request, and what the error says.
BAD_REPLIES = {
    "emb-base64-short": "1535 dimensions, not 1536",
    "emb-base64-ragged": "not a whole number of float32 values",
    "emb-base64-invalid": "not valid base64",
    "emb-short": "1535 dimensions, not 1536",
    "emb-long": "1537 dimensions, not 1536",
    "emb-nan": "NaN or infinite",
    "emb-inf": "NaN or infinite",
    # No float32 form: these come as JSON numbers beside the base64 vectors.
    "emb-null-value": "not numbers",
    "emb-string-value": "not numbers",
    "emb-fewer": "expected 4 vectors, got 3",
    "emb-extra": "expected 4 vectors, got 5",
    "emb-dup-index": "positions",
    "emb-bad-index": "positions",
    "null-content": "vector 3 is missing",
}


@pytest.mark.parametrize("style", ["embed", "aembed", "embed_matrix", "aembed_matrix"])
@pytest.mark.parametrize("mode", sorted(BAD_REPLIES))
def test_a_bad_base64_reply_is_an_invalid_response(openai, mode, style):
    openai.fail(mode)
    backend = ai.get_embedding_backend()

    with pytest.raises(exceptions.AIInvalidResponseError) as caught:
        call = getattr(backend, style)
        result = call(INPUTS)
        if asyncio.iscoroutine(result):
            asyncio.run(result)
        else:
            list(result)

    assert encoding_formats(openai) == ["base64"]
    assert BAD_REPLIES[mode] in str(caught.value)
    assert caught.value.retryable


@pytest.mark.parametrize(
    "value",
    [
        "AAAA*AAA",  # Not in the base64 alphabet.
        "AAAAA",  # Padding missing.
        "déjà vu",  # Not even ASCII.
    ],
)
def test_decoding_rejects_what_is_not_base64(openai, value):
    backend = ai.get_embedding_backend()
    good = base64_vector(fake_array("x", DIMENSIONS))
    with pytest.raises(exceptions.AIInvalidResponseError, match="base64"):
        backend._decoded([good, value])


def test_decoding_a_mixed_reply_checks_every_vector(openai):
    backend = ai.get_embedding_backend()
    numbers = fake_vector("b", DIMENSIONS)
    rows = backend._decoded([base64_vector(fake_array("a", DIMENSIONS)), numbers])

    assert isinstance(rows, list)  # Not all base64: the checks judge it.
    matrix = backend.check_matrix(rows, 2)
    assert_bit_exact(matrix, ["a", "b"])


def test_numbers_beyond_float32_are_invalid(openai):
    backend = ai.get_embedding_backend()
    vector = [0.5] * DIMENSIONS
    vector[7] = 1e39  # Finite in float64, infinite in float32.
    with pytest.raises(exceptions.AIInvalidResponseError, match="NaN or infinite"):
        backend.check_matrix([vector], 1)
    with pytest.raises(exceptions.AIInvalidResponseError, match="NaN or infinite"):
        backend.check_vectors([vector], 1)


# -- embed_matrix / aembed_matrix ------------------------------------------------


def test_embed_matrix_batches_as_embed_does(provider):
    provider.state.dimensions = 8
    inputs = [f"text number {i}" for i in range(7)]
    with override_settings(
        WAGTAIL_VECTOR_INDEX=embedding_settings(
            provider, EMBEDDING_OUTPUT_DIMENSIONS=8, BATCH_SIZE=3
        )
    ):
        matrix = ai.get_embedding_backend().embed_matrix(inputs)

    sent = provider.requests_to("/v1/embeddings")
    assert [len(r.body["input"]) for r in sent] == [3, 3, 1]
    assert_bit_exact(matrix, inputs, 8)


async def test_aembed_matrix_runs_batches_concurrently_within_the_limit(provider):
    provider.state.dimensions = 8
    provider.state.latency = 0.1
    inputs = [f"text {i}" for i in range(20)]
    with override_settings(
        WAGTAIL_VECTOR_INDEX=embedding_settings(
            provider, EMBEDDING_OUTPUT_DIMENSIONS=8, BATCH_SIZE=2, MAX_CONCURRENCY=3
        )
    ):
        matrix = await ai.get_embedding_backend().aembed_matrix(inputs)

    assert len(provider.requests_to("/v1/embeddings")) == 10
    assert provider.state.max_in_flight == 3
    assert_bit_exact(matrix, inputs, 8)


async def test_empty_inputs_give_an_empty_matrix_and_no_request(openai):
    backend = ai.get_embedding_backend()

    for matrix in (backend.embed_matrix([]), await backend.aembed_matrix([])):
        assert matrix.shape == (0, DIMENSIONS)
        assert matrix.dtype == np.float32
    assert openai.requests == []


def test_embed_matrix_checks_its_inputs(openai):
    with pytest.raises(TypeError, match="wrap it in a list"):
        ai.get_embedding_backend().embed_matrix("one text")
    with pytest.raises(TypeError, match="cannot be passed"):
        ai.get_embedding_backend().embed_matrix(["a"], input=["b"])


def offline_backend(dimensions=64) -> HashingEmbeddingBackend:
    return HashingEmbeddingBackend.from_settings(
        "offline", {"EMBEDDING_OUTPUT_DIMENSIONS": dimensions, "BATCH_SIZE": 2}
    )


async def test_offline_backends_give_the_same_vectors_as_a_matrix():
    backend = offline_backend()
    texts = ["Tomatoes grow in the garden", "Stars at night", "", "garden"]

    matrix = backend.embed_matrix(texts)
    expected = np.asarray(list(backend.embed(texts)), dtype=np.float32)

    assert matrix.dtype == np.float32 and matrix.shape == (4, 64)
    assert np.array_equal(matrix, expected)
    assert np.array_equal(await backend.aembed_matrix(texts), expected)


def test_a_backend_that_overrides_embed_gets_its_matrix_from_it():
    class Doubled(HashingEmbeddingBackend):
        def embed(self, inputs, **kwargs):
            return iter([[2.0] * 8 for _ in inputs])

        async def aembed(self, inputs, **kwargs):
            return [[3.0] * 8 for _ in inputs]

    backend = Doubled.from_settings("doubled", {"EMBEDDING_OUTPUT_DIMENSIONS": 8})

    assert np.array_equal(backend.embed_matrix(["a", "b"]), np.full((2, 8), 2.0))
    matrix = asyncio.run(backend.aembed_matrix(["a"]))
    assert matrix.dtype == np.float32 and np.array_equal(matrix, np.full((1, 8), 3))


def test_the_base_class_builds_the_matrix_from_embed_batch():
    class Ones(BaseEmbeddingBackend):
        def _embed_batch(self, batch, parameters):
            return [[1] * 4 for _ in batch]  # Integers are numbers too.

    backend = Ones.from_settings(
        "ones",
        {"MODEL_ID": "ones", "TOKEN_LIMIT": 10, "EMBEDDING_OUTPUT_DIMENSIONS": 4},
    )
    matrix = backend.embed_matrix(["a", "b", "c"])
    assert matrix.dtype == np.float32 and np.array_equal(matrix, np.ones((3, 4)))

    backend_short = Ones.from_settings(
        "ones",
        {"MODEL_ID": "ones", "TOKEN_LIMIT": 10, "EMBEDDING_OUTPUT_DIMENSIONS": 5},
    )
    with pytest.raises(exceptions.AIInvalidResponseError, match="4 dimensions"):
        backend_short.embed_matrix(["a"])


# -- no pydantic serializer warnings ------------------------------------------------


def serializer_warnings(caught) -> list[str]:
    return [
        str(w.message)
        for w in caught
        if "PydanticSerializationUnexpectedValue" in str(w.message)
    ]


def test_base64_replies_cause_no_serializer_warnings(openai):
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend = ai.get_embedding_backend()
        backend.embed_matrix(INPUTS)
        list(backend.embed(INPUTS))
        asyncio.run(backend.aembed_matrix(INPUTS))
        # Any other warning still shows, during the call or after it.
        warnings.warn("something else", UserWarning, stacklevel=1)

    assert serializer_warnings(caught) == []
    assert "something else" in [str(w.message) for w in caught]
    assert warnings.filters == filters


async def test_concurrent_batches_leave_no_filter_behind(provider):
    provider.state.dimensions = 8
    provider.state.latency = 0.05
    inputs = [f"text {i}" for i in range(12)]
    filters = list(warnings.filters)
    with override_settings(
        WAGTAIL_VECTOR_INDEX=embedding_settings(
            provider, EMBEDDING_OUTPUT_DIMENSIONS=8, BATCH_SIZE=2, MAX_CONCURRENCY=4
        )
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            backend = ai.get_embedding_backend()
            await asyncio.gather(
                backend.aembed_matrix(inputs), backend.aembed(inputs[:5])
            )
            inside = list(warnings.filters)

    assert serializer_warnings(caught) == []
    assert len(inside) == len(filters) + 1  # "always", and no leftover filter.
    assert warnings.filters == filters


def test_the_quiet_filter_matches_only_that_warning():
    import re

    from wagtail_vector_index.ai_utils.backends.litellm import _SERIALIZER_WARNING

    def line(value: str, expected: str = "list[float]", field: str = "embedding"):
        return (
            f"\n  PydanticSerializationUnexpectedValue(Expected `{expected}` - "
            "serialized value may not be as expected "
            f"[field_name='{field}', input_value={value}, input_type=str])"
        )

    def quiet(message: str) -> bool:
        return bool(re.compile(_SERIALIZER_WARNING, re.I).match(message))

    head = "Pydantic serializer warnings:"
    assert quiet(head + line("'mZ0dP/Hz'") + line("'AAAA...AA=='"))
    assert not quiet(head + line("'mZ0d'") + line("'x'", field="model"))
    assert not quiet(head + line("'mZ0d'", expected="int"))
    assert not quiet(head + line("'mZ0d'").replace("input_type=str", "input_type=int"))
    assert not quiet("Something else entirely")
