"""What is Qdrant's own in ``QdrantStorage``: its CONFIG and checks
(E041-E046), the API key kept out of everything, one client per location in
a process, collections per build, failures as the package's exceptions, the
connection check, and an index updated and searched through it.

What every storage promises is tested in tests/test_storage_contract.py.
Nothing here needs a Qdrant server or the internet: local mode, and servers
on 127.0.0.1 (a closed port, a tiny HTTP server that refuses or stalls).
"""

from __future__ import annotations

import http.server
import io
import json
import logging
import socket
import threading
import time
import uuid

import numpy as np
import pytest
from django.core.checks import Error
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from wagtail.models import Page

from tests.storage import fill
from tests.testapp.models import ArticlePage
from tests.utils import ARTICLES, OFFLINE, root_page
from wagtail_vector_index.checks import check_settings
from wagtail_vector_index.exceptions import (
    VectorStorageAuthenticationError,
    VectorStorageConnectionError,
    VectorStorageError,
    VectorStorageTimeoutError,
)
from wagtail_vector_index.index.storage import ChunkRow, get_storage

pytest.importorskip("qdrant_client")

from wagtail_vector_index.index.storage import qdrant  # noqa: E402
from wagtail_vector_index.index.storage.qdrant import QdrantStorage  # noqa: E402

pytestmark = pytest.mark.django_db

QDRANT = "wagtail_vector_index.index.storage.qdrant.QdrantStorage"
SETTING = 'WAGTAIL_VECTOR_INDEX["STORAGE"]["CONFIG"]'
SECRET = "qdrant-secret-4f7a9c2e81"
PLACE_HINT = (
    'Set "URL": "http://localhost:6333" for a Qdrant server, or "PATH": "..." '
    '(a folder) or "LOCATION": ":memory:" for qdrant-client\'s local mode, '
    "which runs in the process."
)


def _memory(prefix: str | None = None, **extra) -> dict:
    return {
        "LOCATION": ":memory:",
        "COLLECTION_PREFIX": prefix or f"wvitest{uuid.uuid4().hex[:10]}",
        **extra,
    }


def _storage_setting(config: dict) -> dict:
    return {"STORAGE": {"CLASS": QDRANT, "CONFIG": config}}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def drop_collections():
    """Storages to clean up after the test (Qdrant is not rolled back)."""
    made = []
    yield made.append
    for storage in made:
        for build in storage.builds():
            storage._drop_collection(build)


# -- configuration and checks ---------------------------------------------------


def _check(config) -> list:
    with override_settings(WAGTAIL_VECTOR_INDEX=_storage_setting(config)):
        return check_settings()


def test_a_valid_config_passes_the_checks():
    assert _check({"LOCATION": ":memory:"}) == []
    assert _check({"URL": "https://qdrant.example.com:6333", "API_KEY": SECRET}) == []
    assert (
        _check(
            {
                "URL": "http://127.0.0.1:6333",
                "COLLECTION_PREFIX": "site-a",
                "TIMEOUT": 2.5,
                "HNSW_M": 32,
                "HNSW_EF_CONSTRUCT": 200,
                "ON_DISK": True,
                "QUANTIZATION": "scalar",
                "REPLICATION_FACTOR": 2,
                "SHARD_NUMBER": 3,
            }
        )
        == []
    )


def test_e041_qdrant_client_not_installed(monkeypatch):
    monkeypatch.setattr(qdrant, "_client_module", lambda: None)
    assert _check({"LOCATION": ":memory:"}) == [
        Error(
            'The storage "wagtail_vector_index.index.storage.qdrant.QdrantStorage" '
            "needs the qdrant-client package.",
            hint='Install it with pip install "wagtail-vector-index[qdrant]".',
            id="wagtail_vector_index.E041",
        )
    ]
    with pytest.raises(ImproperlyConfigured, match=r"qdrant-client.*E041"):
        QdrantStorage("pages", config={"LOCATION": ":memory:"})


def test_e042_unknown_keys():
    assert _check({"LOCATION": ":memory:", "HOST": "x", "PORT": 1}) == [
        Error(
            f"{SETTING} has unknown keys: HOST, PORT.",
            hint="Remove them; Qdrant's keys are URL, API_KEY, PATH, LOCATION, "
            "COLLECTION_PREFIX, TIMEOUT, HNSW_M, HNSW_EF_CONSTRUCT, ON_DISK, "
            "QUANTIZATION, REPLICATION_FACTOR, SHARD_NUMBER (see docs/qdrant.md).",
            id="wagtail_vector_index.E042",
        )
    ]


def test_e043_where_the_vectors_are():
    assert _check({}) == [
        Error(
            f"{SETTING} says neither where the Qdrant server is (URL) nor where "
            "local mode keeps its data (PATH or LOCATION).",
            hint=PLACE_HINT,
            id="wagtail_vector_index.E043",
        )
    ]
    assert _check({"URL": "http://localhost:6333", "LOCATION": ":memory:"}) == [
        Error(
            f"{SETTING} sets URL and LOCATION: only one of them may be set.",
            hint=PLACE_HINT,
            id="wagtail_vector_index.E043",
        )
    ]
    # A plain dotted path has no CONFIG: it says where, too.
    with override_settings(WAGTAIL_VECTOR_INDEX={"STORAGE": QDRANT}):
        assert [message.id for message in check_settings()] == [
            "wagtail_vector_index.E043"
        ]


@pytest.mark.parametrize(
    ("key", "value", "shown", "expected"),
    [
        ("URL", 6333, "6333", "a non-empty string"),
        ("PATH", "", "''", "a non-empty string"),
        ("LOCATION", "memory", "'memory'", "':memory:'"),
        ("COLLECTION_PREFIX", "my prefix!", "'my prefix!'", None),
        ("TIMEOUT", 0, "0", "a number of seconds above 0"),
        ("TIMEOUT", "5", "'5'", "a number of seconds above 0"),
        ("HNSW_M", 0, "0", "an integer above 0"),
        ("HNSW_EF_CONSTRUCT", 1.5, "1.5", "an integer above 0"),
        ("REPLICATION_FACTOR", True, "True", "an integer above 0"),
        ("SHARD_NUMBER", "2", "'2'", "an integer above 0"),
        ("ON_DISK", "yes", "'yes'", "True or False"),
        ("QUANTIZATION", "binary", "'binary'", '"scalar" or None'),
    ],
)
def test_e044_wrong_values(key, value, shown, expected):
    if expected is None:
        expected = (
            "letters, digits, _ and - (64 at most, starting with a letter or digit)"
        )
    config = {"LOCATION": ":memory:", key: value}
    if key in ("PATH", "LOCATION"):
        config = {key: value}
    messages = [m for m in _check(config) if m.id == "wagtail_vector_index.E044"]
    assert messages == [
        Error(
            f'{SETTING}["{key}"] is {shown}; it must be {expected}.',
            hint=f"Correct {key}, or remove it to use the default (docs/qdrant.md).",
            id="wagtail_vector_index.E044",
        )
    ]
    with pytest.raises(ImproperlyConfigured, match="E044|E043"):
        QdrantStorage("pages", config=config)


def test_e045_api_key_without_url():
    messages = _check({"LOCATION": ":memory:", "API_KEY": SECRET})
    assert messages == [
        Error(
            f"{SETTING} has an API_KEY but no URL: only a server uses it.",
            hint="Set URL to the server's address, or remove API_KEY to use the "
            "local mode.",
            id="wagtail_vector_index.E045",
        )
    ]
    assert SECRET not in str(messages)


def test_e046_url_not_http():
    messages = _check({"URL": f"https://admin:{SECRET}@qdrant.example.com:6333/x"})
    assert messages == [
        Error(
            f"{SETTING}[\"URL\"] 'https://qdrant.example.com:6333/x' is not an "
            "http or https URL.",
            hint="Use a URL such as http://localhost:6333 (without credentials: "
            "put the key in API_KEY).",
            id="wagtail_vector_index.E046",
        )
    ]
    assert SECRET not in str(messages)
    assert [m.id for m in _check({"URL": "localhost:6333"})] == [
        "wagtail_vector_index.E046"
    ]


def test_a_wrong_api_key_value_is_not_shown_either():
    messages = _check({"URL": "http://localhost:6333", "API_KEY": [SECRET]})
    assert [m.id for m in messages] == ["wagtail_vector_index.E044"]
    assert SECRET not in str(messages)
    assert "not shown" in messages[0].msg


# -- the API key -------------------------------------------------------------------


INSECURE = "ignore:Api key is used with an insecure connection:UserWarning"


@pytest.mark.filterwarnings(INSECURE)
def test_the_api_key_is_never_shown(caplog):
    port = _closed_port()
    config = {"URL": f"http://127.0.0.1:{port}", "API_KEY": SECRET, "TIMEOUT": 1}
    with override_settings(WAGTAIL_VECTOR_INDEX=_storage_setting(config)):
        storage = get_storage("pages")
        with pytest.raises(VectorStorageError) as caught:
            storage.next_build()
        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("check_vector_storage", stdout=out)
        with pytest.raises(CommandError):
            call_command("check_vector_storage", "--json", stdout=out)
    # The package's loggers hide it, whatever a message quotes.
    with caplog.at_level(logging.WARNING, logger="wagtail_vector_index"):
        qdrant.logger.warning("the key was %s", SECRET)

    seen = [
        repr(storage),
        str(storage.config),
        str(vars(storage)),
        storage.describe(),
        str(caught.value),
        repr(caught.value),
        out.getvalue(),
        caplog.text,
    ]
    assert all(SECRET not in text for text in seen)
    assert storage.config["API_KEY"] == "[hidden]"
    assert f"127.0.0.1:{port}" in str(caught.value)


# -- clients -----------------------------------------------------------------------


def test_memory_storages_of_a_process_share_one_client(content_type, drop_collections):
    config = _memory()
    with override_settings(WAGTAIL_VECTOR_INDEX=_storage_setting(config)):
        first, second = get_storage("shared"), get_storage("shared")
    drop_collections(first)
    assert first is not second and first.client is second.client
    vectors = np.eye(4, dtype=np.float32)
    state = fill(first, content_type, vectors)
    hits = second.search(state, vectors[2], 1)
    assert [hit.object_id for hit in hits] == ["o2"]


def test_a_path_is_opened_by_one_client_and_keeps_the_data(content_type, tmp_path):
    config = {"PATH": str(tmp_path / "qdrant")}
    first = QdrantStorage("on.disk", config=config)
    second = QdrantStorage("on.disk", config={"PATH": str(tmp_path / "." / "qdrant")})
    client = first.client
    assert second.client is client
    state = fill(first, content_type, np.eye(3, dtype=np.float32))

    # Closed and opened again (another process would do the same): the data
    # is still there.
    qdrant.close_clients()
    again = QdrantStorage("on.disk", config=config)
    assert again.client is not client
    assert [hit.object_id for hit in again.search(state, [0, 0, 1], 1)] == ["o2"]
    qdrant.close_clients()


def test_collection_options_reach_qdrant(content_type, monkeypatch, drop_collections):
    from qdrant_client import models

    storage = QdrantStorage(
        "options",
        config=_memory(
            HNSW_M=32,
            HNSW_EF_CONSTRUCT=256,
            ON_DISK=True,
            QUANTIZATION="scalar",
            REPLICATION_FACTOR=2,
            SHARD_NUMBER=3,
        ),
    )
    drop_collections(storage)
    calls = []
    real_call = storage._call

    def spy(method, *args, **kwargs):
        calls.append((method, kwargs))
        return real_call(method, *args, **kwargs)

    monkeypatch.setattr(storage, "_call", spy)
    fill(storage, content_type, np.eye(4, dtype=np.float32))

    [created] = [kwargs for method, kwargs in calls if method == "create_collection"]
    assert created["vectors_config"] == models.VectorParams(
        size=4, distance=models.Distance.COSINE, on_disk=True
    )
    assert created["hnsw_config"] == models.HnswConfigDiff(m=32, ef_construct=256)
    assert created["quantization_config"].scalar.type == models.ScalarType.INT8
    assert (created["replication_factor"], created["shard_number"]) == (2, 3)
    assert created["collection_name"] == f"{storage.base}_1"
    # Local mode ignores payload indexes: none are asked for.
    assert "create_payload_index" not in [method for method, _ in calls]


# -- builds as collections ----------------------------------------------------------


def test_activation_drops_older_collections_and_moves_the_alias(
    content_type, django_capture_on_commit_callbacks, drop_collections
):
    storage = QdrantStorage("builds", config=_memory())
    drop_collections(storage)
    vectors = np.eye(4, dtype=np.float32)
    with django_capture_on_commit_callbacks(execute=True):
        first = fill(storage, content_type, vectors)
    second = storage.next_build()
    rows = [ChunkRow(content_type, "x", 0, "x", "h", vectors[0].tobytes())]
    storage.write_build(second, rows)
    # A later update writing meanwhile: its build is left alone.
    storage.write_build(second + 1, rows)
    with django_capture_on_commit_callbacks(execute=True):
        storage.activate(second, model_id="m", dimensions=4, object_count=1)

    assert first.active_build < second
    assert storage.builds() == [second, second + 1]
    aliases = storage.client.get_aliases().aliases
    assert [
        (alias.alias_name, alias.collection_name)
        for alias in aliases
        if alias.alias_name == storage.base
    ] == [(storage.base, storage.collection_name(second))]
    storage.drop()
    assert storage.builds() == []
    assert storage.base not in [
        a.alias_name for a in storage.client.get_aliases().aliases
    ]


def test_a_search_follows_a_build_activated_meanwhile(
    content_type, django_capture_on_commit_callbacks, drop_collections
):
    storage = QdrantStorage("moved", config=_memory())
    drop_collections(storage)
    old = fill(storage, content_type, np.eye(3, dtype=np.float32), prefix="old")
    with django_capture_on_commit_callbacks(execute=True):
        fill(storage, content_type, np.eye(3, dtype=np.float32), prefix="new")
    # ``old`` names a build whose collection is gone: the search reads the
    # state again.
    hits = storage.search(old, [1, 0, 0], 1)
    assert [hit.object_id for hit in hits] == ["new0"]


def test_a_missing_collection_is_a_storage_error(content_type, drop_collections):
    storage = QdrantStorage("missing", config=_memory())
    drop_collections(storage)
    state = fill(storage, content_type, np.eye(3, dtype=np.float32))
    storage._drop_collection(state.active_build)
    with pytest.raises(VectorStorageError, match="missing"):
        storage.search(state, [1, 0, 0], 1)
    assert not storage.inspect(state).keys  # Logged; an update builds it again.


# -- failures -------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers every request as the server's ``behaviour`` says."""

    behaviour = "401"

    def _answer(self):
        if self.behaviour == "slow":
            time.sleep(2.5)
        status = 401 if self.behaviour == "401" else 200
        body = json.dumps({"status": {"error": f"Unauthorized {SECRET}"}}).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # The client gave up (timeout).

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_server():
    def start(behaviour):
        handler = type("Handler", (_Handler,), {"behaviour": behaviour})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    servers = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_server_that_is_down_is_a_connection_error():
    url = f"http://127.0.0.1:{_closed_port()}"
    storage = QdrantStorage("down", config={"URL": url, "TIMEOUT": 1})
    with pytest.raises(VectorStorageConnectionError) as caught:
        storage.builds()
    assert caught.value.retryable and caught.value.where == url
    assert str(caught.value).startswith(
        'Vector index "down": The vector storage could not be reached. '
        f"(QdrantStorage at {url}): "
    )
    check = storage.check_connection()
    assert not check.ok and "could not be reached" in check.error


@pytest.mark.filterwarnings(INSECURE)
def test_a_refused_api_key_is_an_authentication_error(fake_server):
    url = fake_server("401")
    storage = QdrantStorage("auth", config={"URL": url, "API_KEY": SECRET})
    with pytest.raises(VectorStorageAuthenticationError) as caught:
        storage.builds()
    message = str(caught.value)
    assert "rejected the credentials" in message and "HTTP 401" in message
    # The server quoted the key: it is hidden.
    assert SECRET not in message and "[hidden]" in message


def test_a_server_that_does_not_answer_in_time_is_a_timeout(fake_server):
    storage = QdrantStorage("slow", config={"URL": fake_server("slow"), "TIMEOUT": 1})
    started = time.monotonic()
    with pytest.raises(VectorStorageTimeoutError):
        storage.builds()
    assert time.monotonic() - started < 2.4


# -- the connection check ---------------------------------------------------


def test_check_vector_storage_command():
    with override_settings(WAGTAIL_VECTOR_INDEX=_storage_setting(_memory("wvicheck"))):
        out = io.StringIO()
        call_command("check_vector_storage", stdout=out)
        assert out.getvalue().startswith(
            f"{QDRANT}  Qdrant local mode (:memory:), collections wvicheck_*  OK "
        )
        out = io.StringIO()
        call_command("check_vector_storage", "--json", stdout=out)
        result = json.loads(out.getvalue())
        assert (result["ok"], result["storage"], result["error"]) == (
            True,
            QDRANT,
            None,
        )

    url = f"http://127.0.0.1:{_closed_port()}"
    with override_settings(WAGTAIL_VECTOR_INDEX=_storage_setting({"URL": url})):
        out = io.StringIO()
        with pytest.raises(CommandError, match="does not answer"):
            call_command("check_vector_storage", stdout=out)
        assert f"Qdrant server at {url}" in out.getvalue()
        assert "FAILED" in out.getvalue() and "could not be reached" in out.getvalue()

    with override_settings(WAGTAIL_VECTOR_INDEX=_storage_setting({"HNSW_M": 0})):
        out = io.StringIO()
        with pytest.raises(CommandError):
            call_command("check_vector_storage", stdout=out)
        assert "E044" in out.getvalue()


def test_check_vector_storage_on_the_database():
    out = io.StringIO()
    with override_settings(WAGTAIL_VECTOR_INDEX={}):
        call_command("check_vector_storage", stdout=out)
    assert out.getvalue().startswith(
        "wagtail_vector_index.index.storage.DatabaseStorage  DatabaseStorage  OK "
    )


# -- an index on Qdrant ------------------------------------------------------


@pytest.fixture
def on_qdrant(drop_collections):
    setting = {**OFFLINE, **_storage_setting(_memory())}
    with override_settings(WAGTAIL_VECTOR_INDEX=setting):
        yield
        drop_collections(ArticlePage.vector_index.storage)


@pytest.fixture
def articles(on_qdrant):
    home = root_page().add_child(instance=Page(title="Home", slug="qdrant-home"))
    pages = {}
    for title, body in ARTICLES.items():
        pages[title] = home.add_child(
            instance=ArticlePage(title=title, body=f"<p>{body}</p>", intro="")
        )
    return home, pages


def test_an_index_updates_and_searches_on_qdrant(articles):
    home, pages = articles
    index = ArticlePage.vector_index
    assert isinstance(index.storage, QdrantStorage)

    index.update()

    state = index.storage.state()
    assert (state.object_count, state.dimensions) == (len(ARTICLES), 512)
    assert state.chunk_count >= len(ARTICLES)
    results = index.search("tomatoes in my garden", limit=2)
    assert [page.title for page in results] == ["Growing tomatoes", "Pruning roses"]
    similar = index.find_similar(pages["Growing tomatoes"], limit=1)
    assert [page.title for page in similar] == ["Pruning roses"]
    revision = state.revision
    index.update()  # Nothing changed: nothing embedded, the same build.
    assert index.storage.state().active_build == state.active_build

    comet = home.add_child(
        instance=ArticlePage(title="Comets", body="<p>A comet tail</p>")
    )
    index.update_object(comet)
    assert index.search("comet tail", limit=1) == [comet]
    assert index.storage.state().revision != revision
    assert index.storage.state().object_count == len(ARTICLES) + 1

    comet.unpublish()
    index.update_object(comet)  # No longer indexable: removed.
    assert comet not in index.search("comet tail", limit=5)
    assert index.storage.state().object_count == len(ARTICLES)


def test_keyword_search_on_qdrant(articles):
    ArticlePage.vector_index.update()
    results = ArticlePage.vector_index.search("tomatoes", limit=2, mode="keyword")
    assert [page.title for page in results][:1] == ["Growing tomatoes"]
