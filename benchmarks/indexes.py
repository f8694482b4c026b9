"""Vector index benchmarks: search latency by storage, and rebuild cost.

    python benchmarks/indexes.py [--quick] [--storage database,pgvector]

Search: N chunks of 1,536 dimensions (random unit vectors; search cost does
not depend on the values), 10,000 and 100,000 (2,000 and 10,000 with
--quick), queried through the storage's ``search`` (what ``VectorIndex.search``
adds on top is one embedding call and one query for the objects), median and
p95 of repeated queries, and the memory the storage holds in this process.
Rebuild: 1,000 pages against a loopback provider answering each embedding
request after 50 ms, first run and unchanged second run (which must make zero
provider calls).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def setup_django(storage: str) -> None:
    if storage == "pgvector":
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings_postgres"
    else:
        os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    from django.conf import settings

    if storage == "database":
        settings.DATABASES["default"]["NAME"] = str(
            Path(tempfile.mkdtemp()) / "bench.sqlite3"
        )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def fill(index_name: str, count: int, dimensions: int) -> object:
    import numpy as np
    from django.contrib.contenttypes.models import ContentType

    from wagtail_vector_index.index.storage import ChunkRow, get_storage
    from wagtail_vector_index.models import IndexState

    storage = get_storage(index_name)
    content_type = ContentType.objects.get(app_label="testapp", model="book")
    rng = np.random.default_rng(42)
    build = storage.next_build()
    batch = 5_000
    for start in range(0, count, batch):
        vectors = rng.standard_normal((min(batch, count - start), dimensions))
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        storage.write_build(
            build,
            (
                ChunkRow(content_type.pk, str(start + i), 0, "", f"{start + i}", v)
                for i, v in enumerate(vectors.astype(np.float32))
            ),
        )
    storage.activate(build, model_id="bench", dimensions=dimensions, object_count=count)
    return storage, IndexState.objects.get(index_name=index_name)


def bench_search(storage_name: str, sizes: list[int], queries: int) -> list[dict]:
    import numpy as np

    rows = []
    dimensions = 1536
    rng = np.random.default_rng(7)
    for size in sizes:
        index_name = f"bench-{size}"
        started = time.perf_counter()
        storage, state = fill(index_name, size, dimensions)
        fill_seconds = time.perf_counter() - started
        tracemalloc.start()
        started = time.perf_counter()
        storage.search(state, rng.standard_normal(dimensions), 5)  # Loads/warms.
        first = time.perf_counter() - started
        memory = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        timings = []
        for _ in range(queries):
            vector = rng.standard_normal(dimensions)
            started = time.perf_counter()
            hits = storage.search(state, vector, 5)
            timings.append(time.perf_counter() - started)
            assert len(hits) == 5
        rows.append(
            {
                "storage": storage_name,
                "chunks": size,
                "median_ms": statistics.median(timings) * 1000,
                "p95_ms": percentile(timings, 0.95) * 1000,
                "first_ms": first * 1000,
                "memory_mb": memory / 1e6,
                "fill_s": fill_seconds,
            }
        )
    return rows


def bench_rebuild(pages: int) -> dict:
    from django.db import connection
    from django.test.utils import override_settings
    from wagtail.models import Page

    from tests.conftest import embedding_backend_settings
    from tests.providers import ProviderServer
    from tests.testapp.models import ArticlePage

    server = ProviderServer().start()
    server.state.latency = 0.05
    server.state.dimensions = 1536
    os.environ["OPENAI_API_KEY"] = "sk-bench"
    root = Page.get_first_root_node()
    home = root.add_child(instance=Page(title="Bench home", slug="bench-home"))
    words = "garden tomato rose star planet bread oven bicycle rain river".split()
    for number in range(pages):
        body = " ".join(words[(number + i) % len(words)] for i in range(120))
        home.add_child(
            instance=ArticlePage(
                title=f"Page {number}",
                slug=f"p{number}",
                body=f"<p>{body} {number}</p>",
            )
        )
    settings = {
        "EMBEDDING_BACKENDS": {
            "default": embedding_backend_settings(
                server,
                EMBEDDING_OUTPUT_DIMENSIONS=1536,
                BATCH_SIZE=256,
                DEFAULT_PARAMETERS={"timeout": 30},
            )
        }
    }
    result = {"pages": pages, "vendor": connection.vendor}
    try:
        with override_settings(WAGTAIL_VECTOR_INDEX=settings):
            for label in ("first", "second"):
                before = len(server.requests_to("/v1/embeddings"))
                started = time.perf_counter()
                report = ArticlePage.vector_index.update()
                result[f"{label}_s"] = time.perf_counter() - started
                result[f"{label}_calls"] = (
                    len(server.requests_to("/v1/embeddings")) - before
                )
                result[f"{label}_embedded"] = report.embedded
    finally:
        server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--storage", default="database")
    parser.add_argument("--skip-rebuild", action="store_true")
    args = parser.parse_args()
    sizes = [2_000, 10_000] if args.quick else [10_000, 100_000]
    queries = 20 if args.quick else 50
    setup_django(args.storage)
    print(f"## Search latency ({args.storage})\n")
    print("| storage | chunks | median ms | p95 ms | first search ms | memory MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in bench_search(args.storage, sizes, queries):
        print(
            f"| {row['storage']} | {row['chunks']:,} | {row['median_ms']:.2f} | "
            f"{row['p95_ms']:.2f} | {row['first_ms']:.0f} | {row['memory_mb']:.0f} |"
        )
    if not args.skip_rebuild:
        pages = 200 if args.quick else 1_000
        result = bench_rebuild(pages)
        vendor = result["vendor"]
        print(f"\n## Rebuild of {pages:,} pages, provider 50 ms ({vendor})\n")
        print("| run | seconds | provider calls | chunks embedded |")
        print("| --- | ---: | ---: | ---: |")
        for label in ("first", "second"):
            seconds, calls = result[f"{label}_s"], result[f"{label}_calls"]
            embedded = result[f"{label}_embedded"]
            print(f"| {label} | {seconds:.2f} | {calls} | {embedded} |")
        if result["second_calls"] != 0:
            raise SystemExit("The unchanged second run made provider calls.")


if __name__ == "__main__":
    main()
