"""The 0.10.0 column of ``benchmarks/indexes.py``: one storage of
wagtail-vector-index 0.10.0 (PyPI), measured in this process.

    benchmarks/.venv-old/bin/python benchmarks/old_indexes.py \\
        --storage numpy|pgvector [--sizes 2000,10000] [--queries 50] [--pages 1000]

Run by ``indexes.py --with-old`` with the Python of the venv that ``run.py
--with-old`` creates, from the ``benchmarks`` folder (the repository root
would put this checkout's package in front of the old one). PostgreSQL comes
from ``WVI_OLD_DATABASE`` (``DATABASES["default"]`` as JSON, started by
``indexes.py``); without it, a new SQLite file.

What is measured is that release's own code, as a site would run it:

- search: ``index.get_similar_documents(query_vector, limit=5)``, what its
  ``search()``, ``query()`` and ``find_similar()`` call after embedding the
  query. Its numpy storage rebuilds the index's documents on every call (each
  object's text is split again and its stored embeddings read back, then a
  Python loop over every vector); its pgvector storage orders the rows by
  cosine distance in PostgreSQL (no vector index: an exact scan).
  The objects and their stored embeddings are written directly, with exactly
  the text that release's splitter produces, so a search embeds nothing (the
  loopback provider counts calls and the run fails if there is one).
- rebuild: ``index.rebuild_index()`` for every page, what its
  ``update_vector_indexes`` command runs, twice, against the loopback
  provider answering after 50 ms.

Prints one ``BENCH_RESULT`` JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent
RESULT_PREFIX = "BENCH_RESULT "
DIMENSIONS = 1536

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ.setdefault("OPENAI_API_KEY", "bench-not-a-secret")

STORAGE_PROVIDERS = {
    "numpy": "wagtail_vector_index.storage.numpy.NumpyStorageProvider",
    "pgvector": "wagtail_vector_index.storage.pgvector.PgvectorStorageProvider",
}


def setup_django(storage: str, server: Any) -> None:
    import django
    from django.conf import settings

    values = {
        name: value
        for name, value in runpy.run_path(
            str(REPOSITORY / "tests" / "settings.py")
        ).items()
        if name.isupper()
    }
    apps = [app for app in values["INSTALLED_APPS"] if app != "tests.testapp"]
    apps.insert(0, "old_index_app")
    if storage == "pgvector":
        apps.insert(0, "wagtail_vector_index.storage.pgvector")
    database = os.environ.get("WVI_OLD_DATABASE")
    values.update(
        INSTALLED_APPS=apps,
        DATABASES={
            "default": json.loads(database)
            if database
            else {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(Path(tempfile.mkdtemp()) / "old.sqlite3"),
            }
        },
        WAGTAIL_VECTOR_INDEX={
            "EMBEDDING_BACKENDS": {
                "default": {
                    "CLASS": "wagtail_vector_index.ai_utils.backends.litellm."
                    "LiteLLMEmbeddingBackend",
                    "CONFIG": {
                        "MODEL_ID": "openai/bench-embed",
                        "TOKEN_LIMIT": 8191,
                        "EMBEDDING_OUTPUT_DIMENSIONS": DIMENSIONS,
                    },
                }
            },
        },
        WAGTAIL_VECTOR_INDEX_STORAGE_PROVIDERS={
            "default": {"STORAGE_PROVIDER": STORAGE_PROVIDERS[storage]}
        },
    )
    # That release passes no DEFAULT_PARAMETERS to embedding calls: LiteLLM
    # finds the loopback provider through the environment.
    os.environ["OPENAI_API_BASE"] = server.openai_base
    settings.configure(**values)
    django.setup()

    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def embedding_calls(server: Any) -> tuple[int, int]:
    """Requests to the embeddings endpoint so far, and the inputs they held."""
    requests = server.requests_to("/v1/embeddings")
    inputs = 0
    for request in requests:
        sent = request.body.get("input", [])
        inputs += len(sent) if isinstance(sent, list) else 1
    return len(requests), inputs


def fill(count: int, storage: str, rng: Any) -> Any:
    """``count`` objects with one stored embedding each."""
    import numpy as np
    from django.contrib.contenttypes.models import ContentType
    from old_index_app.models import OldChunk

    from wagtail_vector_index.storage.models import Embedding

    OldChunk.objects.all().delete()  # Embeddings too (generic relation).
    Embedding.objects.all().delete()
    objects = OldChunk.objects.bulk_create(
        [OldChunk(text=f"Chunk {number}") for number in range(count)],
        batch_size=2_000,
    )
    index = OldChunk.vector_index
    converter = index.get_converter()
    token_limit = index.get_embedding_backend().config.token_limit
    content_type = ContentType.objects.get_for_model(OldChunk)
    base_content_type = Embedding._get_base_content_type(OldChunk)
    batch = 2_000
    for start in range(0, count, batch):
        part = objects[start : start + batch]
        vectors = rng.standard_normal((len(part), DIMENSIONS))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        rows = []
        for obj, vector in zip(part, vectors, strict=True):
            (content,) = converter._get_split_content(obj, chunk_size=token_limit)
            rows.append(
                Embedding(
                    content_type=content_type,
                    base_content_type=base_content_type,
                    object_id=str(obj.pk),
                    vector=[float(value) for value in vector],
                    content=content,
                )
            )
        Embedding.objects.bulk_create(rows)
    if storage == "pgvector":
        index.rebuild_index()  # Copies the stored embeddings: no provider call.
    return index


def table_size_mb() -> float | None:
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_total_relation_size('wagtail_vector_index_embedding') "
            "+ pg_total_relation_size('pgvector_pgvectorembedding')"
        )
        return cursor.fetchone()[0] / 1e6


def bench_search(
    storage: str, sizes: list[int], queries: int, budget: float, server: Any
) -> list[dict]:
    import numpy as np
    from bench_common import percentile

    rng = np.random.default_rng(7)
    rows = []
    for size in sizes:
        started = time.perf_counter()
        index = fill(size, storage, rng)
        fill_seconds = time.perf_counter() - started
        calls_before = embedding_calls(server)[0]

        def search(index: Any = index) -> list:
            vector = [float(value) for value in rng.standard_normal(DIMENSIONS)]
            return list(index.get_similar_documents(vector, limit=5))

        started = time.perf_counter()
        search()
        first = time.perf_counter() - started
        # Held after a search and peak during one, under tracemalloc (which
        # slows Python down: this search is not timed).
        tracemalloc.start()
        search()
        memory, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        timings: list[float] = []
        deadline = time.perf_counter() + budget
        while len(timings) < queries and (
            len(timings) < 3 or time.perf_counter() < deadline
        ):
            started = time.perf_counter()
            hits = search()
            timings.append(time.perf_counter() - started)
            assert len(hits) == 5, hits
        calls = embedding_calls(server)[0] - calls_before
        if calls:
            raise RuntimeError(f"searching {size:,} chunks made {calls} provider calls")
        rows.append(
            {
                "storage": storage,
                "chunks": size,
                "queries": len(timings),
                "median_ms": statistics.median(timings) * 1000,
                "p95_ms": percentile(timings, 0.95) * 1000,
                "first_ms": first * 1000,
                "memory_mb": memory / 1e6,
                "peak_mb": peak / 1e6,
                "fill_s": fill_seconds,
            }
        )
    return rows


def bench_rebuild(pages: int, server: Any) -> dict:
    from bench_common import add_pages
    from django.db import connection
    from old_index_app.models import OldArticlePage
    from wagtail.models import Page

    server.state.latency = 0.05
    root = Page.get_first_root_node()
    home = root.add_child(instance=Page(title="Bench home", slug="bench-home"))
    add_pages(home, OldArticlePage, pages)
    index = OldArticlePage.vector_index
    result = {"pages": pages, "vendor": connection.vendor}
    for label in ("first", "second"):
        calls, inputs = embedding_calls(server)
        started = time.perf_counter()
        index.rebuild_index()
        result[f"{label}_s"] = time.perf_counter() - started
        after_calls, after_inputs = embedding_calls(server)
        result[f"{label}_calls"] = after_calls - calls
        result[f"{label}_embedded"] = after_inputs - inputs
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", choices=sorted(STORAGE_PROVIDERS), required=True)
    parser.add_argument("--sizes", default="2000,10000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds of queries per size"
    )
    parser.add_argument("--pages", type=int, default=1_000, help="0: no rebuild")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",") if size]
    # The shared loader: the loopback provider with Nagle's algorithm off
    # (else each reply may wait ~40 ms for a delayed ACK).
    from bench_common import load_providers

    server = load_providers().ProviderServer().start()
    server.state.dimensions = DIMENSIONS
    try:
        setup_django(args.storage, server)
        import wagtail_vector_index

        package = Path(wagtail_vector_index.__file__).resolve().parent
        if package == REPOSITORY / "wagtail_vector_index":
            raise RuntimeError(f"imported this checkout's package: {package}")
        result: dict[str, Any] = {
            "search": bench_search(
                args.storage, sizes, args.queries, args.budget, server
            ),
            "rebuild": None,
        }
        result["table_mb"] = table_size_mb() if sizes else None
        if args.pages:
            result["rebuild"] = bench_rebuild(args.pages, server)
    except Exception as error:  # The column says why.
        import traceback

        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {error}"[:500]}
    finally:
        server.stop()
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
