"""Vector index benchmarks: search latency by storage, and rebuild cost.

    python benchmarks/indexes.py [--quick] [--storage database,pgvector] [--with-old]

Each storage runs in a process of its own, one after the other; the tables put
them side by side (ratio: pgvector's median over the database storage's).

Search: N chunks of 1,536 dimensions (random unit vectors; search cost does
not depend on the values), 10,000 and 100,000 (2,000 and 10,000 with
--quick), queried through the storage's ``search`` (what ``VectorIndex.search``
adds on top is one embedding call and one query for the objects), median and
p95 of repeated queries, the first query after the build (untimed ones
under tracemalloc give the memory the storage holds and its peak).
Rebuild: 1,000 pages against a loopback provider answering each embedding
request after 50 ms, first run and unchanged second run (which must make zero
provider calls).

``--with-old`` adds wagtail-vector-index 0.10.0 from PyPI (the venv of
``run.py --with-old``, plus pgvector and psycopg): its numpy and pgvector
storages, measured by ``old_indexes.py`` in that venv, searching 2,000 and
10,000 chunks (each of its numpy searches re-reads every object, so 100,000
is out of reach) and rebuilding the same pages.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench_common import (
    RemoteProvider,
    add_pages,
    child_environment,
    last_lines,
    parse_result,
    percentile,
    pip,
    pip_error,
    prepare_old,
    print_rebuilds,
)

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent
sys.path.insert(0, str(REPOSITORY))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

#: PgvectorStorage.hnsw_maintenance_work_mem for the search benchmark's builds.
BUILD_MEMORY = "1GB"


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
        # The usage ledger writes from its own thread (docs/usage.md, SQLite).
        settings.DATABASES["default"]["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    # The benchmark makes thousands of pages before it times anything;
    # Wagtail's own search index is not what it measures, and on PostgreSQL
    # Wagtail recomputes its title norms over the whole index on every page
    # saved (a 10,000-page fill took over 15 minutes).
    settings.WAGTAILSEARCH_BACKENDS = {
        "default": {
            "BACKEND": "wagtail.search.backends.database",
            "AUTO_UPDATE": False,
        }
    }
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def fill(index_name: str, count: int, dimensions: int) -> object:
    import numpy as np
    from django.contrib.contenttypes.models import ContentType

    from wagtail_vector_index.index.storage import ChunkRow, get_storage
    from wagtail_vector_index.models import IndexState

    storage = get_storage(index_name)
    if hasattr(storage, "hnsw_maintenance_work_mem"):
        # The HNSW graph of 100,000 chunks needs some 650 MB to be built in
        # memory; with PostgreSQL's default 64 MB it takes tens of minutes.
        storage.hnsw_maintenance_work_mem = BUILD_MEMORY
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
        started = time.perf_counter()
        storage.search(state, rng.standard_normal(dimensions), 5)  # Loads/warms.
        first = time.perf_counter() - started
        memory, peak = traced_memory(storage, state, rng.standard_normal(dimensions))
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
                "peak_mb": peak / 1e6,
                "fill_s": fill_seconds,
            }
        )
    return rows


def traced_memory(storage: Any, state: Any, vector: Any) -> tuple[int, int]:
    """What the storage holds after a search, and the peak while loading:
    the in-memory copy is dropped and loaded again under tracemalloc (which
    slows Python down, so this search is not timed)."""
    if hasattr(storage, "forget"):
        storage.forget()
    tracemalloc.start()
    try:
        storage.search(state, vector, 5)
        return tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()


def bench_rebuild(sizes: list[int]) -> list[dict]:
    """Rebuild ``ArticlePage.vector_index`` at each size (pages added as the
    sizes grow; the index is emptied before each first run), 1,536
    dimensions, against a provider in a process of its own answering each
    request after 50 ms."""
    import resource

    from django.db import connection
    from django.test.utils import override_settings
    from wagtail.models import Page

    from tests.testapp.models import ArticlePage
    from tests.utils import embedding_backend_settings
    from wagtail_vector_index.models import IndexState

    server = RemoteProvider(latency=0.05, dimensions=1536)
    os.environ["OPENAI_API_KEY"] = "sk-bench"
    root = Page.get_first_root_node()
    home = root.add_child(instance=Page(title="Bench home", slug="bench-home"))
    settings = {
        "EMBEDDING_BACKENDS": {
            "default": embedding_backend_settings(
                server,
                EMBEDDING_OUTPUT_DIMENSIONS=1536,
                BATCH_SIZE=256,
                DEFAULT_PARAMETERS={"timeout": 30},
            )
        },
        # Each size's first run embeds every page (the pages of the sizes
        # before would otherwise come from the embedding cache).
        "EMBEDDING_CACHE": {"ENABLED": False},
    }
    results = []
    added = 0
    try:
        with override_settings(WAGTAIL_VECTOR_INDEX=settings):
            index = ArticlePage.vector_index
            # A process that has imported LiteLLM and made one call (the
            # OpenAI SDK loads its resources on first use).
            index.embedding_backend.embed_matrix(["warm-up"])
            for pages in sizes:
                add_pages(home, ArticlePage, pages - added, start=added)
                added = pages
                IndexState.objects.filter(index_name=index.name).delete()
                index.storage.next_build()  # Clears the rows of the last size.
                index.storage.forget()
                result = {"pages": pages, "vendor": connection.vendor}
                for label in ("first", "second"):
                    before = server.count("/v1/embeddings")
                    started = time.perf_counter()
                    report = index.update()
                    result[f"{label}_s"] = time.perf_counter() - started
                    result[f"{label}_calls"] = server.count("/v1/embeddings") - before
                    result[f"{label}_embedded"] = report.embedded
                    # The process's peak resident memory so far (Linux: KiB).
                    result[f"{label}_peak_mb"] = (
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                    )
                results.append(result)
    finally:
        server.stop()
    return results


def table_size_mb(storage: object) -> float | None:
    """PostgreSQL's size of the pgvector table with its indexes (HNSW included)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_total_relation_size('wagtail_vector_index_pgvector_chunk')"
        )
        return cursor.fetchone()[0] / 1e6


def measure(storage: str, quick: bool, skip_rebuild: bool, skip_search: bool) -> dict:
    """Every figure for one storage, in this process."""
    sizes = [] if skip_search else [2_000, 10_000] if quick else [10_000, 100_000]
    queries = 20 if quick else 50
    setup_django(storage)
    result: dict = {"search": [], "rebuild": None}
    for row in bench_search(storage, sizes, queries):
        result["search"].append(row)
    if storage == "pgvector" and sizes:
        result["table_mb"] = table_size_mb(None)
    if not skip_rebuild:
        result["rebuild"] = bench_rebuild([200, 1_000] if quick else [1_000, 10_000])
    return result


def run_each(
    storages: list[str], quick: bool, skip_rebuild: bool, skip_search: bool
) -> dict:
    """One new process per storage (Django is set up once per process)."""
    results = {}
    for storage in storages:
        command = [sys.executable, __file__, "--storage", storage, "--json"]
        command += ["--quick"] * quick + ["--skip-rebuild"] * skip_rebuild
        command += ["--skip-search"] * skip_search
        print(f"{storage}...", file=sys.stderr, flush=True)
        output = subprocess.run(
            command, check=True, capture_output=True, text=True
        ).stdout
        results[storage] = json.loads(output.strip().splitlines()[-1])
    return results


# -- wagtail-vector-index 0.10.0 ---------------------------------------------

OLD_STORAGES = {"numpy": "database", "pgvector": "pgvector"}  # Compared with.


def old_python(venv: Path) -> tuple[Path | None, str]:
    """The older release's venv (run.py's), with what its pgvector storage needs."""
    old = prepare_old(venv)
    if old.python is None:
        return None, old.reason
    constraints = venv / "constraints.txt"
    probe = subprocess.run(
        [str(old.python), "-c", "import pgvector.django, psycopg"],
        capture_output=True,
        cwd=BENCHMARKS,
    )
    if probe.returncode:
        code, output = pip(
            old.python,
            ["install", "-c", str(constraints), "pgvector", "psycopg[binary]"],
            venv / "install.log",
            timeout=600,
        )
        if code:
            return (
                None,
                f"pgvector and psycopg failed to install: {pip_error(output)}",
            )
    return old.python, old.reason


def old_database() -> dict:
    """A database of its own for the older release, on the test server."""
    import psycopg

    from tests.postgres import start

    settings = start()
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        connection.execute("DROP DATABASE IF EXISTS wvi_old_bench")
        connection.execute("CREATE DATABASE wvi_old_bench")
    return {**settings, "NAME": "wvi_old_bench"}


def run_old(venv: Path, quick: bool, skip_rebuild: bool, skip_search: bool) -> dict:
    """Each storage of 0.10.0 in a process of its own: {storage: result}."""
    python, how = old_python(venv)
    if python is None:
        return {"error": how}
    results: dict = {"how": how}
    for storage in OLD_STORAGES:
        print(f"0.10.0 {storage}...", file=sys.stderr, flush=True)
        env = child_environment()
        if storage == "pgvector":
            env["WVI_OLD_DATABASE"] = json.dumps(old_database())
        command = [
            str(python),
            str(BENCHMARKS / "old_indexes.py"),
            "--storage",
            storage,
        ]
        sizes = "" if skip_search else "2000" if quick else "2000,10000"
        command += ["--sizes", sizes]
        command += ["--budget", "20" if quick else "60"]
        command += ["--pages", "0" if skip_rebuild else ("200" if quick else "1000")]
        finished = subprocess.run(
            command, capture_output=True, text=True, cwd=BENCHMARKS, env=env
        )
        result = parse_result(finished.stdout)
        if result is None:
            result = {"error": last_lines(finished.stderr) or "no result"}
        results[storage] = result
    return results


def report_old_search(results: dict, old: dict) -> None:
    print(
        "| 0.10.0 storage | chunks | searches | median ms | p95 ms | first ms "
        "| memory MB | peak MB | median ratio to this checkout |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for storage, ours in OLD_STORAGES.items():
        result = old[storage]
        if "error" in result:
            print(f"| {storage} | — | — | — | — | — | — | — | {result['error']} |")
            continue
        mine = {row["chunks"]: row for row in results.get(ours, {}).get("search", [])}
        for row in result["search"]:
            versus = "—"
            if row["chunks"] in mine:
                ratio = row["median_ms"] / mine[row["chunks"]]["median_ms"]
                versus = f"{ratio:,.1f}x ({ours})"
            print(
                f"| {storage} | {row['chunks']:,} | {row['queries']} | "
                f"{row['median_ms']:,.2f} | {row['p95_ms']:,.2f} | "
                f"{row['first_ms']:,.0f} | {row['memory_mb']:.0f} | "
                f"{row['peak_mb']:,.0f} | {versus} |"
            )


def report_old(results: dict, old: dict) -> None:
    print("\n## wagtail-vector-index 0.10.0 (PyPI), same measurements\n")
    if "error" in old:
        print(f"Not measured: {old['error']}")
        return
    print(f"Installed with: {old['how']}.\n")
    if any(old[s].get("search") or "error" in old[s] for s in OLD_STORAGES):
        report_old_search(results, old)
    for storage in OLD_STORAGES:
        if old[storage].get("table_mb") is not None:
            print(
                f"\n0.10.0 {storage}: its tables in PostgreSQL (embeddings as "
                f"JSON and as vectors): {old[storage]['table_mb']:.0f} MB."
            )
    rebuilt = [s for s in OLD_STORAGES if (old[s].get("rebuild") or {}).get("pages")]
    if rebuilt:
        print()
        print_rebuilds("0.10.0 storage", {s: old[s]["rebuild"] for s in rebuilt})


def report(results: dict) -> None:
    storages = list(results)
    if results[storages[0]]["search"]:
        report_search(results)
    if not any(results[s]["rebuild"] for s in storages):
        return
    print(
        "\n## Rebuild, 1,536 dimensions, provider (its own process) answering "
        "after 50 ms\n"
    )
    print_rebuilds("storage", {s: results[s]["rebuild"] for s in storages})
    print(
        "\nPeak memory: the benchmark process's peak resident set so far "
        "(Django, LiteLLM and the pages included), read after each run."
    )


def report_search(results: dict) -> None:
    storages = list(results)
    base = storages[0]
    print("## Search latency: 5 nearest of N chunks of 1,536 dimensions\n")
    header = "| chunks |"
    for storage in storages:
        header += (
            f" {storage}: median ms | p95 ms | first ms | memory MB | peak MB "
            "| write + index s |"
        )
    if len(storages) > 1:
        header += " median ratio |"
    print(header)
    print("| ---: |" + " ---: |" * (header.count("|") - 2))
    sizes = [row["chunks"] for row in results[base]["search"]]
    for position, size in enumerate(sizes):
        line = f"| {size:,} |"
        for storage in storages:
            row = results[storage]["search"][position]
            line += (
                f" {row['median_ms']:.2f} | {row['p95_ms']:.2f} | "
                f"{row['first_ms']:.0f} | {row['memory_mb']:.0f} | "
                f"{row['peak_mb']:.0f} | {row['fill_s']:.1f} |"
            )
        if len(storages) > 1:
            ratios = [
                results[s]["search"][position]["median_ms"]
                / results[base]["search"][position]["median_ms"]
                for s in storages[1:]
            ]
            line += " " + ", ".join(f"{r:.2f}x" for r in ratios) + " |"
        print(line)
    for storage in storages:
        if results[storage].get("table_mb") is not None:
            print(
                f"\n{storage}: table and indexes in PostgreSQL after the largest "
                f"size: {results[storage]['table_mb']:.0f} MB (pg_total_relation_size)."
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--storage",
        default="database",
        help="database, pgvector, or both: database,pgvector",
    )
    parser.add_argument("--skip-rebuild", action="store_true")
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument(
        "--with-old", action="store_true", help="add wagtail-vector-index 0.10.0"
    )
    parser.add_argument(
        "--old-venv",
        type=Path,
        default=BENCHMARKS / ".venv-old",
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    storages = [name.strip() for name in args.storage.split(",") if name.strip()]
    unknown = set(storages) - {"database", "pgvector"}
    if unknown or not storages:
        parser.error(f"unknown storage: {', '.join(sorted(unknown)) or '(none)'}")
    if args.json:
        (storage,) = storages
        print(
            json.dumps(
                measure(storage, args.quick, args.skip_rebuild, args.skip_search)
            )
        )
        return
    skips = (args.skip_rebuild, args.skip_search)
    results = run_each(storages, args.quick, *skips)
    report(results)
    if args.with_old:
        report_old(results, run_old(args.old_venv.resolve(), args.quick, *skips))
    for storage, result in results.items():
        for rebuild in result["rebuild"] or []:
            if rebuild["second_calls"] != 0:
                raise SystemExit(
                    f"{storage}, {rebuild['pages']} pages: the unchanged second "
                    "run made provider calls."
                )


if __name__ == "__main__":
    main()
