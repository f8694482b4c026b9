"""The local (sentence-transformers) embedding backend without its model.

These run in the main suite, where torch and sentence-transformers are not
installed, and again beside tests/test_local_backend.py, where they are:
configuring, describing and checking the backend must not import torch, and
a missing package is reported with the command that installs it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.checks import Error
from django.test import override_settings

from wagtail_vector_index import ai
from wagtail_vector_index.ai_utils.backends import get_embedding_backend
from wagtail_vector_index.ai_utils.backends import local as local_backend
from wagtail_vector_index.checks import check_settings
from wagtail_vector_index.exceptions import InvalidAIBackendError

LOCAL = (
    "wagtail_vector_index.ai_utils.backends.local.SentenceTransformersEmbeddingBackend"
)
MISSING = (
    'AI backend "default": the local embedding backend needs '
    "sentence-transformers, which is not installed; install it with "
    'pip install "wagtail-vector-index[local]".'
)


def embedding(config=None):
    return {"EMBEDDING_BACKENDS": {"default": {"CLASS": LOCAL, "CONFIG": config or {}}}}


@pytest.fixture
def without_sentence_transformers(monkeypatch):
    """As if sentence-transformers were not installed: ``import`` fails and
    ``find_spec`` finds nothing (``None`` in ``sys.modules`` does both)."""
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    monkeypatch.setattr(local_backend, "_models", {})


def test_configuring_describing_and_checking_import_no_torch():
    """In a fresh process: import the module, build the backend from
    settings, describe its model and run the checks; torch stays out."""
    code = f"""
import json, sys
import django
django.setup()
from django.test import override_settings
from wagtail_vector_index import ai
from wagtail_vector_index.checks import check_settings
settings = {json.dumps(embedding())}
with override_settings(WAGTAIL_VECTOR_INDEX=settings):
    backend = ai.get_embedding_backend()
    messages = [m.id for m in check_settings() if m.id != "wagtail_vector_index.E040"]
print(json.dumps({{
    "dimensions": backend.embedding_output_dimensions,
    "token_limit": backend.config.token_limit,
    "offline": backend.offline,
    "messages": messages,
    "loaded": sorted(
        name for name in ("torch", "sentence_transformers", "transformers")
        if name in sys.modules
    ),
}}))
"""
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "HF_HUB_OFFLINE": "1",
        },
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "dimensions": 384,
        "token_limit": 254,
        "offline": True,
        "messages": [],
        "loaded": [],
    }


@pytest.mark.parametrize(
    "model_id",
    [
        "sentence-transformers/all-MiniLM-L6-v2",
        "all-MiniLM-L6-v2",
    ],
)
def test_known_model_is_described_without_loading(
    model_id, without_sentence_transformers
):
    backend = get_embedding_backend(
        backend_dict={"CLASS": LOCAL, "CONFIG": {"MODEL_ID": model_id}},
        backend_id="default",
    )
    # 256 positions, less [CLS] and [SEP].
    assert backend.config.token_limit == 254
    assert backend.embedding_output_dimensions == 384
    assert local_backend.loaded_models() == []


def test_settings_describe_any_model_without_loading(without_sentence_transformers):
    config = {
        "MODEL_ID": "/srv/models/my-model",
        "TOKEN_LIMIT": 510,
        "EMBEDDING_OUTPUT_DIMENSIONS": 768,
    }
    backend = get_embedding_backend(
        backend_dict={"CLASS": LOCAL, "CONFIG": config}, backend_id="default"
    )
    assert (backend.config.token_limit, backend.embedding_output_dimensions) == (
        510,
        768,
    )
    assert local_backend.loaded_models() == []


def test_missing_package_fails_at_first_use(without_sentence_transformers):
    backend = get_embedding_backend(
        backend_dict={"CLASS": LOCAL, "CONFIG": {}}, backend_id="default"
    )
    with pytest.raises(InvalidAIBackendError) as error:
        backend.embed_matrix(["Hello"])
    assert str(error.value) == MISSING
    with pytest.raises(InvalidAIBackendError) as error:
        backend.count_tokens("Hello")
    assert str(error.value) == MISSING


async def test_missing_package_fails_async_too(without_sentence_transformers):
    backend = get_embedding_backend(
        backend_dict={"CLASS": LOCAL, "CONFIG": {}}, backend_id="default"
    )
    with pytest.raises(InvalidAIBackendError) as error:
        await backend.aembed(["Hello"])
    assert str(error.value) == MISSING


def test_unknown_model_without_package_fails_when_built(
    without_sentence_transformers,
):
    """Only the model could say its dimensions: the error names the missing
    package, not the unknown token limit."""
    with pytest.raises(InvalidAIBackendError) as error:
        get_embedding_backend(
            backend_dict={"CLASS": LOCAL, "CONFIG": {"MODEL_ID": "my/own-model"}},
            backend_id="default",
        )
    assert str(error.value) == MISSING


def test_unknown_hub_model_needs_its_limits_and_loads_nothing(monkeypatch):
    """Describing a Hub name the table does not know would mean loading,
    perhaps downloading, it: the settings must give its limits instead."""
    monkeypatch.setattr(local_backend, "sentence_transformers_missing", lambda: None)
    monkeypatch.setattr(local_backend, "_models", {})
    with pytest.raises(InvalidAIBackendError) as error:
        get_embedding_backend(
            backend_dict={"CLASS": LOCAL, "CONFIG": {"MODEL_ID": "my/own-model"}},
            backend_id="default",
        )
    assert str(error.value) == (
        'AI backend "default": the token limit of model "my/own-model" is '
        'unknown; set CONFIG["TOKEN_LIMIT"].'
    )
    assert local_backend.loaded_models() == []


@override_settings(WAGTAIL_VECTOR_INDEX=embedding({"MODEL_ID": "my/own-model"}))
def test_e040_package_not_installed(without_sentence_transformers):
    assert check_settings() == [
        Error(
            'WAGTAIL_VECTOR_INDEX["EMBEDDING_BACKENDS"]["default"]["CLASS"] '
            f"{LOCAL!r} needs a package that is not installed.",
            hint='Install it with pip install "wagtail-vector-index[local]".',
            id="wagtail_vector_index.E040",
        )
    ]


@override_settings(WAGTAIL_VECTOR_INDEX=embedding())
def test_no_e040_when_installed(monkeypatch):
    monkeypatch.setattr(local_backend, "sentence_transformers_missing", lambda: None)
    assert check_settings() == []


def test_model_location(tmp_path, monkeypatch):
    """A folder is used as it is; a known model whose package is installed
    loads from the package's files; other names go to sentence-transformers."""
    assert local_backend.model_location(str(tmp_path)) == str(tmp_path)
    package = tmp_path / "packaged_model_for_tests"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from pathlib import Path\n"
        "def get_model_path():\n"
        "    return Path(__file__).parent / 'model'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        local_backend.KNOWN_MODELS,
        "someone/packaged-model",
        local_backend.KnownModel(8, 16, package="packaged_model_for_tests"),
    )
    assert local_backend.model_location("someone/packaged-model") == str(
        package / "model"
    )
    assert local_backend.model_location("someone/other-model") == "someone/other-model"


@override_settings(WAGTAIL_VECTOR_INDEX=embedding())
def test_shown_as_offline():
    backend = ai.get_embedding_backend()
    assert backend.display_name == (
        "default: sentence-transformers/all-MiniLM-L6-v2 (offline)"
    )
    assert backend.estimate_cost(1000) == 0.0
