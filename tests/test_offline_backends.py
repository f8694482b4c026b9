"""The offline backends: no network, deterministic, and labelled as offline."""

import math
import re
import subprocess
import sys

import pytest
from django.test import override_settings

from wagtail_vector_index import ai
from wagtail_vector_index.ai_utils.backends.offline import hashed_vector

ECHO = "wagtail_vector_index.ai_utils.backends.offline"
OFFLINE = {
    "CHAT_BACKENDS": {
        "default": {
            "CLASS": f"{ECHO}.EchoChatBackend",
            "CONFIG": {"DEFAULT_PARAMETERS": {"temperature": 0.2}},
        }
    },
    "EMBEDDING_BACKENDS": {
        "default": {
            "CLASS": f"{ECHO}.HashingEmbeddingBackend",
            "CONFIG": {"EMBEDDING_OUTPUT_DIMENSIONS": 256},
        }
    },
}


@pytest.fixture(autouse=True)
def offline():
    with override_settings(WAGTAIL_VECTOR_INDEX=OFFLINE):
        yield


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))  # Unit vectors.


def test_labelled_offline():
    chat, embedding = ai.get_chat_backend(), ai.get_embedding_backend()
    assert chat.offline and embedding.offline
    assert chat.display_name == "default: echo (offline)"
    assert embedding.display_name == "default: hashing (offline)"


def test_echo_answers_the_last_user_message():
    response = ai.get_chat_backend().chat(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What grows in May?"},
        ]
    )
    assert "What grows in May?" in response.text
    assert "temperature=0.2" in response.text  # Shows the parameters it got.
    assert response.cost == 0.0
    assert response.usage.total_tokens > 0


def test_echo_streams_word_by_word():
    stream = ai.get_chat_backend().chat(
        messages=[{"role": "user", "content": "one two three"}], stream=True
    )
    parts = [part["content"] for part in stream]
    assert len(parts) > 5
    assert all(len(part.split()) == 1 for part in parts)
    assert "".join(parts).endswith(
        "You said: one two three (parameters: temperature=0.2)"
    )
    assert stream.usage.completion_tokens == len(re.findall(r"\w+", "".join(parts)))


async def test_echo_streams_async():
    stream = await ai.get_chat_backend().achat(
        messages=[{"role": "user", "content": "hello"}], stream=True, delay=0.001
    )
    assert "hello" in "".join([part["content"] async for part in stream])


def test_hashing_vectors_reflect_shared_words():
    garden, tomatoes, stars = ai.get_embedding_backend().embed(
        [
            "Tomatoes grow well in a sunny garden",
            "How to grow tomatoes in the garden",
            "Telescopes show distant stars and galaxies",
        ]
    )
    assert len(garden) == 256
    assert math.isclose(math.sqrt(cosine(garden, garden)), 1.0)
    assert cosine(garden, tomatoes) > 0.4
    assert abs(cosine(garden, stars)) < 0.2
    assert cosine(garden, tomatoes) > cosine(garden, stars) + 0.3


def test_hashing_is_case_insensitive_and_ignores_punctuation():
    assert hashed_vector("Tomato, basil!", 64) == hashed_vector("tomato basil", 64)


def test_hashing_is_the_same_in_another_process():
    # Python's hash() is randomised per process; the backend must not use it.
    code = (
        "from wagtail_vector_index.ai_utils.backends.offline import hashed_vector;"
        "print(hashed_vector('same words every time', 32))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert other.stdout.strip() == str(hashed_vector("same words every time", 32))


def test_empty_text_gives_the_zero_vector():
    assert hashed_vector("", 8) == [0.0] * 8
    assert hashed_vector("...", 8) == [0.0] * 8


async def test_hashing_async_matches_sync():
    backend = ai.get_embedding_backend()
    texts = ["a b", "c d", "e"]
    assert await backend.aembed(texts) == list(backend.embed(texts))


def test_the_first_import_path_still_works():
    """Settings written for ``...backends.echo`` (the README showed it) keep
    working: the same classes, built from the same settings."""
    from wagtail_vector_index.ai_utils.backends import echo, offline

    assert echo.EchoChatBackend is offline.EchoChatBackend
    assert echo.HashingEmbeddingBackend is offline.HashingEmbeddingBackend
    old = "wagtail_vector_index.ai_utils.backends.echo"
    with override_settings(
        WAGTAIL_VECTOR_INDEX={
            "CHAT_BACKENDS": {"default": {"CLASS": f"{old}.EchoChatBackend"}},
            "EMBEDDING_BACKENDS": {
                "default": {"CLASS": f"{old}.HashingEmbeddingBackend"}
            },
        }
    ):
        assert ai.get_chat_backend().offline
        assert len(next(ai.get_embedding_backend().embed(["a text"]))) == 384
