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


# -- decoding in one pass, and the async client's connections ---------------


def test_replies_are_decoded_in_one_pass_with_the_json(
    provider, litellm_calls, monkeypatch
):
    """pydantic-core reads the JSON and decodes the base64 together: the
    reply's ``json()`` and binascii are not used for a reply as asked for."""
    import binascii

    import httpx

    from wagtail_vector_index.ai_utils.backends import openai_direct

    assert openai_direct._base64_reader() is not None
    used = []

    def refuse(name):
        def used_anyway(*args, **kwargs):
            used.append(name)
            raise AssertionError(f"{name} used")

        return used_anyway

    monkeypatch.setattr(binascii, "a2b_base64", refuse("binascii"))
    monkeypatch.setattr(httpx.Response, "json", refuse("Response.json"))
    provider.state.dimensions = DIMENSIONS
    with override_settings(WAGTAIL_VECTOR_INDEX=settings_for(provider)):
        backend = ai.get_embedding_backend()
        assert_vectors(backend.embed_matrix(INPUTS))
        assert_vectors(asyncio.run(backend.aembed_matrix(INPUTS)))
        vectors = asyncio.run(backend.aembed(INPUTS))
    assert used == []
    assert vectors == [vector.tolist() for vector in expected()]


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"embedding": [0.5, 1.0]}]}',  # Floats after all.
        b'{"data": [{"embedding": "AACA"}]}',  # 3 bytes: no whole float32.
        b'{"data": [{"embedding": "AACAPw==", "index": "0"}]}',
        b'{"error": {"message": "no"}}',
        b"[]",
    ],
)
def test_replies_other_than_asked_for_are_left_to_the_full_reader(body):
    """Anything but base64 vectors of whole float32 values is not decoded
    by the one-pass reader: the reader that judges every reply (and says
    what is wrong with it) reads it as before."""
    from wagtail_vector_index.ai_utils.backends import openai_direct

    assert openai_direct._decoded_reply(body) is None


def test_an_older_pydantic_core_is_not_trusted(provider, monkeypatch):
    """A pydantic-core that ignores ``val_json_bytes`` would hand back the
    base64 text as bytes; the reader checks a known vector first and, if
    it is not decoded, leaves replies to the json module and binascii."""
    from wagtail_vector_index.ai_utils.backends import openai_direct

    class IgnoresTheSetting:
        def __init__(self, schema, config=None):
            from pydantic_core import SchemaValidator, core_schema

            item = core_schema.typed_dict_schema(
                {"embedding": core_schema.typed_dict_field(core_schema.bytes_schema())}
            )
            self._inner = SchemaValidator(
                core_schema.typed_dict_schema(
                    {
                        "data": core_schema.typed_dict_field(
                            core_schema.list_schema(item)
                        )
                    }
                )
            )

        def validate_json(self, content):
            return self._inner.validate_json(content)

    import pydantic_core

    monkeypatch.setattr(pydantic_core, "SchemaValidator", IgnoresTheSetting)
    monkeypatch.setattr(openai_direct, "_validator", None)
    assert openai_direct._base64_reader() is None
    provider.state.dimensions = DIMENSIONS
    with override_settings(WAGTAIL_VECTOR_INDEX=settings_for(provider)):
        assert_vectors(ai.get_embedding_backend().embed_matrix(INPUTS))
    monkeypatch.setattr(openai_direct, "_validator", None)  # Built again.


def test_a_finished_event_loop_leaves_no_unclosed_connections(provider, caplog):
    """Async requests go through LiteLLM's own HTTP client (aiohttp). The
    clients of an event loop that has finished are let go, their
    connections closed, when the next loop asks: nothing is left for the
    garbage collector to report as "Unclosed client session"."""
    import gc
    import logging

    from wagtail_vector_index.ai_utils.backends import openai_direct

    provider.state.dimensions = DIMENSIONS
    caplog.set_level(logging.ERROR, logger="asyncio")
    with override_settings(WAGTAIL_VECTOR_INDEX=settings_for(provider)):
        backend = ai.get_embedding_backend()
        for _loop in range(3):
            assert_vectors(asyncio.run(backend.aembed_matrix(INPUTS)))
    loops = list(openai_direct._async_clients)
    assert len(loops) == 1 and loops[0].is_closed()  # The last one's.
    (_client, http_client), *_others = openai_direct._async_clients[loops[0]].values()
    assert type(http_client._transport).__name__ == "LiteLLMAiohttpTransport"
    gc.collect()
    assert not [r for r in caplog.records if "Unclosed" in r.getMessage()]


def run_without_settings(script, unset=()):
    """``script`` run by this Python from the repository root, without
    ``DJANGO_SETTINGS_MODULE`` (nor the ``unset`` variables)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    environment = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for name in ("DJANGO_SETTINGS_MODULE", *unset):
        environment.pop(name, None)
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env=environment,
        timeout=120,
    )


def test_no_unclosed_connections_at_exit(provider, tmp_path):
    """A script that embeds asynchronously and exits reports nothing on
    its way out (the clients still held are closed at exit)."""
    provider.state.dimensions = DIMENSIONS
    script = tmp_path / "embed_and_exit.py"
    script.write_text(
        "import asyncio\n"
        "from wagtail_vector_index.ai_utils.backends import get_embedding_backend\n"
        "backend = get_embedding_backend(backend_dict={\n"
        "    'CLASS': 'wagtail_vector_index.ai_utils.backends.litellm."
        "LiteLLMEmbeddingBackend',\n"
        "    'CONFIG': {'MODEL_ID': 'openai/test-embed', 'TOKEN_LIMIT': 8191,\n"
        f"        'EMBEDDING_OUTPUT_DIMENSIONS': {DIMENSIONS},\n"
        f"        'DEFAULT_PARAMETERS': {{'api_base': {provider.openai_base!r},\n"
        "            'api_key': 'sk-test'}}}, backend_id='default')\n"
        "async def main():\n"
        "    return await backend.aembed_matrix(['alpha', 'beta'])\n"
        "print(asyncio.run(main()).shape)\n"
    )
    done = run_without_settings(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"(2, {DIMENSIONS})"
    # At exit the report may itself fail ("Exception ignored in:
    # ClientSession.__del__"), so neither form may appear.
    for sign in ("Unclosed", "ClientSession", "Exception ignored"):
        assert sign not in done.stderr, done.stderr


def test_the_loopback_provider_builds_base64_replies_as_json_would():
    """The test and benchmark server assembles base64 replies from cached
    parts (tests/providers.py): byte for byte what ``json.dumps`` makes."""
    import json

    from tests.providers import base64_reply, base64_vector

    inputs = ["alpha beta", "gamma", "ünïcode text"]
    tokens = sum(len(text.split()) for text in inputs)
    made = {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": base64_vector(fake_array(text, 16)),
            }
            for i, text in enumerate(inputs)
        ],
        "model": 'quoted "model"',
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    assert base64_reply(inputs, 16, 'quoted "model"') == json.dumps(made).encode()


def test_without_django_settings_errors_are_still_typed_and_readable(
    provider, tmp_path
):
    """In a script without Django settings, a reply that is wrong (vectors
    of other dimensions) and a missing API key raise the package's typed
    errors with their English messages, not ``ImproperlyConfigured`` from
    the translation machinery."""
    provider.state.dimensions = 8  # The backend expects 1,536.
    script = tmp_path / "errors_without_settings.py"
    script.write_text(
        "import os\n"
        "from wagtail_vector_index.ai_utils.backends import get_embedding_backend\n"
        "from wagtail_vector_index.exceptions import AIProviderError\n"
        "def backend(**parameters):\n"
        "    return get_embedding_backend(backend_dict={\n"
        "        'CLASS': 'wagtail_vector_index.ai_utils.backends.litellm."
        "LiteLLMEmbeddingBackend',\n"
        "        'CONFIG': {'MODEL_ID': 'openai/test-embed', 'TOKEN_LIMIT': 8191,\n"
        f"            'EMBEDDING_OUTPUT_DIMENSIONS': {DIMENSIONS}, 'MAX_RETRIES': 0,\n"
        f"            'DEFAULT_PARAMETERS': {{'api_base': {provider.openai_base!r},\n"
        "                **parameters}}}, backend_id='default')\n"
        "for parameters in ({'api_key': 'sk-test'}, {}):\n"
        "    try:\n"
        "        backend(**parameters).embed_matrix(['alpha'])\n"
        "    except AIProviderError as error:\n"
        "        print(type(error).__name__, '|', error)\n"
    )
    done = run_without_settings(script, unset=("OPENAI_API_KEY",))
    assert done.returncode == 0, done.stderr
    wrong, no_key = done.stdout.strip().splitlines()
    assert wrong.startswith("AIInvalidResponseError | ")
    assert f"8 dimensions, not {DIMENSIONS}" in wrong
    assert no_key.startswith("AIAuthenticationError | ")
    assert "no API key is configured" in no_key
