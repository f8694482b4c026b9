"""Real processes updating one index at once: exactly one copy of every chunk.

Each test starts ``manage.py update_vector_indexes`` in subprocesses against
a database of their own, with 300 pages and a slow provider (a
``ProviderServer`` in this process; tests/settings_subprocess.py points the
subprocesses at both): a SQLite file, or in the PostgreSQL run (``--ds
tests.settings_postgres``) a fresh database on the server tests/postgres.py
started, with pgvector.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.providers import ProviderServer

REPOSITORY = Path(__file__).resolve().parent.parent
ON_POSTGRES = connection.vendor == "postgresql"
PAGES = 300
#: Seconds the provider takes per request: an update of 300 chunks makes two
#: requests, so it holds the index's lease for a few seconds.
LATENCY = 1.0


@dataclass
class Site:
    database: str
    env: dict[str, str]

    @property
    def table(self) -> str:
        if ON_POSTGRES:
            return "wagtail_vector_index_pgvector_chunk"
        return "wagtail_vector_index_embeddingchunk"

    def query(self, sql: str, params: list[Any]) -> list[tuple]:
        if ON_POSTGRES:
            import psycopg

            with psycopg.connect(self.database) as db:
                return db.execute(sql.replace("?", "%s"), params).fetchall()
        with sqlite3.connect(self.database) as db:
            return db.execute(sql, params).fetchall()

    def execute(self, sql: str) -> None:
        if ON_POSTGRES:
            import psycopg

            with psycopg.connect(self.database) as db:
                db.execute(sql)
        else:
            with sqlite3.connect(self.database) as db:
                db.execute(sql)

    def chunks(self, index_name: str) -> dict[str, Any]:
        """Rows, distinct chunks and what the index's state says."""
        rows, distinct = self.query(
            "SELECT COUNT(*), COUNT(DISTINCT content_type_id || ':' || object_id "  # noqa: S608
            f"|| ':' || position) FROM {self.table} WHERE index_name = ?",
            [index_name],
        )[0]
        state = self.query(
            "SELECT chunk_count, active_build, dimensions FROM "
            "wagtail_vector_index_indexstate WHERE index_name = ?",
            [index_name],
        )
        chunk_count, active_build, dimensions = state[0] if state else (None,) * 3
        (outside,) = self.query(
            f"SELECT COUNT(*) FROM {self.table} "  # noqa: S608
            "WHERE index_name = ? AND build <> ?",
            [index_name, active_build or 0],
        )[0]
        return {
            "rows": rows,
            "chunks": distinct,
            "state": chunk_count,
            "outside the active build": outside,
            "dimensions": dimensions,
        }


def _postgres_database() -> tuple[str, Any]:
    """A new database on the test server, and how to drop it."""
    import psycopg

    settings = connection.settings_dict
    name = f"wvi_concurrent_{uuid.uuid4().hex[:8]}"
    server = {
        "host": settings["HOST"],
        "port": settings["PORT"],
        "user": settings["USER"],
        "password": settings["PASSWORD"],
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as db:
        db.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    password = f":{settings['PASSWORD']}" if settings["PASSWORD"] else ""
    url = (
        f"postgresql://{settings['USER']}{password}@{settings['HOST']}:"
        f"{settings['PORT']}/{name}"
    )
    return url, drop


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    if ON_POSTGRES:
        database, drop = _postgres_database()
    else:
        database = str(tmp_path_factory.mktemp("concurrent") / "site.sqlite3")

        def drop() -> None:
            pass

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings_subprocess",
        "WVI_TEST_DATABASE": database,
        "WVI_TEST_PROVIDER": "http://127.0.0.1:9",  # Set per run.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "OPENAI_API_KEY": "sk-test-concurrent",
    }
    env.pop("WVI_POSTGRES_URL", None)
    try:
        subprocess.run(
            [sys.executable, "-m", "tests.concurrent_site", str(PAGES)],
            cwd=REPOSITORY,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        yield Site(database, env)
    finally:
        drop()


@pytest.fixture(autouse=True)
def _empty_embedding_cache(site):
    """Every test's updates embed through the provider: the vectors earlier
    tests' processes left in the site's embedding cache are removed."""
    site.execute("DELETE FROM wagtail_vector_index_embeddingcacheentry")


@pytest.fixture(scope="module")
def _server():
    server = ProviderServer().start()
    yield server
    server.stop()


@pytest.fixture
def provider(_server):
    _server.reset()
    _server.state.latency = LATENCY
    return _server


def start(site: Site, provider: ProviderServer, *args: str, dimensions: int = 8):
    env = {
        **site.env,
        "WVI_TEST_PROVIDER": provider.url,
        "WVI_TEST_DIMENSIONS": str(dimensions),
    }
    return subprocess.Popen(
        [sys.executable, "tests/manage.py", "update_vector_indexes", *args],
        cwd=REPOSITORY,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def finish(process: subprocess.Popen) -> Result:
    stdout, stderr = process.communicate(timeout=120)
    return Result(process.returncode, stdout, stderr)


#: Seconds the provider takes per request while two updates race: long
#: enough that the first still holds the lease when the second process,
#: started once the first is embedding, has loaded Django and LiteLLM (a
#: few seconds on a busy 2-core machine).
RACE_LATENCY = 8.0


def race(
    site: Site, provider: ProviderServer, *args: str, hold: bool = False
) -> list[Result]:
    """Two commands: the second started once the first holds the lease (its
    first embedding request has reached the provider). The provider answers
    after ``RACE_LATENCY``; with ``hold``, only once the second command has
    ended, so that the second meets the lease however slowly it starts (on
    a loaded machine, loading Django and LiteLLM took longer than the
    latency: the second then came after the first had finished)."""
    if hold:
        provider.state.hold = threading.Event()
    else:
        provider.state.latency = RACE_LATENCY
    first = start(site, provider, *args)
    deadline = time.monotonic() + 120
    while not provider.requests_to("/v1/embeddings"):
        assert first.poll() is None, finish(first)
        assert time.monotonic() < deadline, "the first update never embedded"
        time.sleep(0.05)
    second = start(site, provider, *args)
    if hold:
        try:
            second_result = finish(second)
        finally:
            provider.state.hold.set()
        return [finish(first), second_result]
    return [finish(first), finish(second)]


def embedded_inputs(provider: ProviderServer) -> int:
    return sum(len(r.json["input"]) for r in provider.requests_to("/v1/embeddings"))


def test_a_second_update_stops_with_a_clear_message(site, provider):
    index = "testapp.articlepage"
    results = race(site, provider, index, "--noinput", hold=True)

    done = [r for r in results if r.returncode == 0]
    stopped = [r for r in results if r.returncode != 0]
    assert len(done) == 1 and len(stopped) == 1, results
    assert f"Done: {PAGES} chunks embedded, 0 reused." in done[0].stdout
    assert stopped[0].returncode == 1
    message = stopped[0].stderr
    assert f'The vector index "{index}" is being updated by another process' in message
    assert "--wait SECONDS" in message
    assert "Traceback" not in message
    assert embedded_inputs(provider) == PAGES  # Embedded once.
    assert site.chunks(index) == {
        "rows": PAGES,
        "chunks": PAGES,
        "state": PAGES,
        "outside the active build": 0,
        "dimensions": 8,
    }


def test_a_second_update_with_wait_goes_after_the_first(site, provider):
    index = "everything"  # Not built yet: both processes have work to do.
    results = race(site, provider, index, "--noinput", "--wait", "120")

    assert [r.returncode for r in results] == [0, 0], results
    outputs = sorted(r.stdout for r in results)
    assert sum(f"Done: {PAGES} chunks embedded" in out for out in outputs) == 1
    assert sum("unchanged, nothing to embed" in out for out in outputs) == 1
    assert embedded_inputs(provider) == PAGES
    counts = site.chunks(index)
    assert counts["rows"] == counts["chunks"] == counts["state"] == PAGES
    assert counts["outside the active build"] == 0


def test_an_update_killed_holding_the_lease_does_not_block_the_next(site, provider):
    # Another number of dimensions: the whole index is embedded again.
    index = "testapp.articlepage"
    provider.state.dimensions = 12
    killed = start(site, provider, index, "--noinput", dimensions=12)
    deadline = time.monotonic() + 60
    while not provider.requests_to("/v1/embeddings"):  # It holds the lease.
        assert killed.poll() is None, finish(killed)
        assert time.monotonic() < deadline
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.wait()

    result = finish(start(site, provider, index, "--noinput", dimensions=12))

    assert result.returncode == 0, result
    assert f"Done: {PAGES} chunks embedded" in result.stdout
    assert "took over the update lease" in result.stderr
    counts = site.chunks(index)
    assert counts["rows"] == counts["chunks"] == counts["state"] == PAGES
    assert counts["dimensions"] == 12


KEEP_ALIVE = """
import time, django
django.setup()
from wagtail_vector_index.index.lease import IndexLease
from wagtail_vector_index.models import IndexUpdateLease

lease = IndexLease("concurrent.alive", seconds=0.6)
assert lease.try_acquire()
rows = IndexUpdateLease.objects.filter(index_name="concurrent.alive")
with lease.kept_alive():
    time.sleep(1.5)  # Longer than the lease: an HNSW build, say.
    taken = IndexLease("concurrent.alive").try_acquire()
print(rows.get().owner == lease.token, taken)
lease.confirm()
lease.release()
"""


def test_a_long_step_keeps_the_lease_alive(site):
    # On PostgreSQL a thread refreshes the lease while the update is busy in
    # one long step; SQLite allows one writer, so there it expires (and
    # another process may take over: the update then stops, see
    # test_index_integrity.py).
    result = subprocess.run(
        [sys.executable, "-c", KEEP_ALIVE],
        cwd=REPOSITORY,
        env=site.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if ON_POSTGRES:
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["True", "False"]
    else:
        assert "IndexLeaseLostError" in result.stderr, result.stderr
        assert result.stdout.split() == ["False", "True"]  # Taken over.
