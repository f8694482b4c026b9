"""Scoped searches against the unscoped search, on each storage.

    python benchmarks/scopes.py [--quick] [--storage database,pgvector,qdrant]

N chunks of 1,536 dimensions (clustered random vectors, one chunk per page),
10,000 and 100,000 (2,000 and 10,000 with --quick), every page under one
site's root, one page in ten under a second site's root inside it (a real
Wagtail ``Site``, which pgvector gives an HNSW index of its own), all in
one locale. Timed,
through the storage's ``search`` as ``VectorIndex.search_results(q,
limit=10)`` calls it (48 chunks asked for):

- unscoped (``site=None``, no translations);
- a site holding every page (``request=`` of the default site, with
  ``WAGTAIL_I18N_ENABLED``: the tree path of its root and the active locale);
- a site holding 10% of the pages;
- the same two scopes given as the keys of the objects allowed, which is what
  every scoped search did before the storages filtered inside their engine
  (and what a ``filter=`` queryset still does).

Median of 30 queries each, the cases taking turns query by query, in a
process of its own per storage; the ratios are each scope's median over the
unscoped one. For pgvector the last column says which HNSW index the query's
plan walks (the build's, the site's, or none: every allowed vector
compared). Qdrant runs in qdrant-client's local mode (brute force, for
correctness only), or against the server at ``QDRANT_URL`` when that is set
(marked as such).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

DIMENSIONS = 1536
QUERIES = 30
#: What search_results(limit=10) asks the storage for.
WANTED = 10 * 4 + 8
ROOT = "0001"
SITE_ALL = "00010001"
SITE_SMALL = "000100010002"  # Inside SITE_ALL: one page in ten.


def path_of(number: int) -> str:
    """Page ``number``'s tree path: under the small site's root for one page
    in ten, elsewhere under the big site's root otherwise."""
    parent = SITE_SMALL if number % 10 == 0 else SITE_ALL + "0003"
    return f"{parent}{number:08d}"


def setup(storage: str) -> None:
    from indexes import setup_django

    setup_django("pgvector" if storage == "pgvector" else "database")
    if storage == "qdrant":
        from django.conf import settings

        config = (
            {"URL": os.environ["QDRANT_URL"]}
            if os.environ.get("QDRANT_URL")
            else {"LOCATION": ":memory:"}
        )
        settings.WAGTAIL_VECTOR_INDEX = {
            "STORAGE": {
                "CLASS": "wagtail_vector_index.index.storage.qdrant.QdrantStorage",
                "CONFIG": {**config, "COLLECTION_PREFIX": "bench"},
            }
        }


def second_site() -> None:
    """A Wagtail site whose root page is at ``SITE_SMALL``, inside the
    default site (whose root is at ``SITE_ALL``), as a site of a multi-site
    install is: the storages that index a site's rows apart (pgvector) see
    it."""
    from wagtail.models import Page, Site

    home = Page.objects.get(path=SITE_ALL)
    while not Page.objects.filter(path=SITE_SMALL).exists():
        number = home.get_children_count() + 1
        home.add_child(instance=Page(title=f"Site {number}", slug=f"site-{number}"))
        home.refresh_from_db()
    root = Page.objects.get(path=SITE_SMALL)
    Site.objects.get_or_create(hostname="small.test", port=80, root_page=root)


def fill(index_name: str, count: int):
    import numpy as np
    from django.contrib.contenttypes.models import ContentType
    from indexes import BUILD_MEMORY

    from wagtail_vector_index.index.storage import ChunkRow, get_storage

    second_site()
    storage = get_storage(index_name)
    if hasattr(storage, "hnsw_maintenance_work_mem"):
        storage.hnsw_maintenance_work_mem = BUILD_MEMORY
    content_type = ContentType.objects.get(app_label="testapp", model="articlepage")
    rng = np.random.default_rng(42)
    centres = rng.standard_normal((64, DIMENSIONS))
    build = storage.next_build()
    batch = 5_000
    for start in range(0, count, batch):
        size = min(batch, count - start)
        vectors = centres[rng.integers(0, 64, size)] + 0.5 * rng.standard_normal(
            (size, DIMENSIONS)
        )
        storage.write_build(
            build,
            (
                ChunkRow(
                    content_type.pk,
                    str(start + i),
                    0,
                    "",
                    f"{start + i}",
                    vector,
                    path=path_of(start + i),
                    locale_id=1,
                )
                for i, vector in enumerate(vectors.astype(np.float32))
            ),
            dimensions=DIMENSIONS,
        )
    state = storage.activate(
        build, model_id="bench", dimensions=DIMENSIONS, object_count=count
    )
    return storage, state, content_type.pk, centres


def walked_index(storage, state, query, options) -> str:
    """Which HNSW index pgvector's plan for a case walks: the build's, a
    site's, or none (every allowed vector compared); "" elsewhere."""
    if not hasattr(storage, "search_sql") or "keys" in options:
        return ""
    from django.db import connection

    where = options.get("where")
    conditions, params = storage.where_sql(where)
    iterative = bool(conditions) and storage.iterative_scans()
    sql = storage.search_sql(
        state, query, WANTED, conditions=conditions, iterative=iterative
    )
    with connection.cursor() as cursor:
        for name, value in (
            ("enable_seqscan", "off"),
            ("enable_bitmapscan", "off"),
            ("enable_sort", "off"),
        )[: 3 if iterative else 0]:
            cursor.execute("SELECT set_config(%s, %s, false)", [name, value])
        cursor.execute("EXPLAIN " + sql, params or None)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET ALL")
    if storage.hnsw_index_name(state.active_build) + "_s" in plan:
        return "the site's"
    if storage.hnsw_index_name(state.active_build) in plan:
        return "the build's"
    return "none (exact)"


def measure(storage_name: str, sizes: list[int]) -> list[dict]:
    import numpy as np

    from wagtail_vector_index.index.storage import Where

    setup(storage_name)
    rows = []
    rng = np.random.default_rng(7)
    for size in sizes:
        storage, state, content_type, centres = fill(f"scopes-{size}", size)
        all_keys = {(content_type, str(n)) for n in range(size)}
        small_keys = {(content_type, str(n)) for n in range(0, size, 10)}
        in_engine = getattr(storage, "filters_in_engine", False)
        cases = {
            "unscoped": {},
            "site with every page": (
                {"where": Where(paths=(SITE_ALL,), locale_id=1)}
                if in_engine
                else {"keys": all_keys}
            ),
            "site with 10%": (
                {"where": Where(paths=(SITE_SMALL,), locale_id=1)}
                if in_engine
                else {"keys": small_keys}
            ),
            "every page, as keys (before)": {"keys": all_keys},
            "10%, as keys (before)": {"keys": small_keys},
        }
        queries = [
            (centres[i % 64] + 0.5 * rng.standard_normal(DIMENSIONS)).astype(np.float32)
            for i in range(QUERIES)
        ]
        storage.search(state, queries[0], WANTED)  # Loads / warms.
        prepared = {}
        for label, options in cases.items():
            if "keys" in options:
                # What allowed_keys() costs: a set of every key the scope
                # allows (made again for each query, as each search does).
                options = {"keys": options["keys"]}
            prepared[label] = options
            storage.search(state, queries[0], WANTED, **options)
        # The cases take turns query by query: a change of the machine's
        # load during the run weighs on every case alike.
        timings: dict[str, list[float]] = {label: [] for label in cases}
        for query in queries:
            for label, options in prepared.items():
                if "keys" in options:
                    options = {"keys": set(options["keys"])}
                started = time.perf_counter()
                hits = storage.search(state, query, WANTED, **options)
                timings[label].append(time.perf_counter() - started)
                small = label.startswith(("site with 10", "10%"))
                assert len(hits) == WANTED, (label, len(hits))
                if small:
                    assert all(int(hit.object_id) % 10 == 0 for hit in hits), label
        for label, options in prepared.items():
            rows.append(
                {
                    "storage": storage_name
                    + (
                        " (server)"
                        if storage_name == "qdrant" and os.environ.get("QDRANT_URL")
                        else ""
                    ),
                    "chunks": size,
                    "case": label,
                    "median_ms": statistics.median(timings[label]) * 1000,
                    "in_engine": in_engine,
                    "walks": walked_index(storage, state, queries[0], options),
                }
            )
        if hasattr(storage, "drop"):
            storage.drop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--storage", default="database")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    storages = [name.strip() for name in args.storage.split(",") if name.strip()]
    sizes = [2_000, 10_000] if args.quick else [10_000, 100_000]
    if args.json:
        print(json.dumps(measure(storages[0], sizes)))
        return
    results = []
    for storage in storages:
        print(f"{storage}...", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--json", "--storage", storage]
        command += ["--quick"] * args.quick
        output = subprocess.run(command, check=True, capture_output=True, text=True)
        results += json.loads(output.stdout.strip().splitlines()[-1])
    print(
        "| storage | chunks | search | median ms | over unscoped | HNSW index walked |"
    )
    print("| --- | ---: | --- | ---: | ---: | --- |")
    unscoped = {
        (row["storage"], row["chunks"]): row["median_ms"]
        for row in results
        if row["case"] == "unscoped"
    }
    for row in results:
        base = unscoped[(row["storage"], row["chunks"])]
        print(
            f"| {row['storage']} | {row['chunks']:,} | {row['case']} | "
            f"{row['median_ms']:.1f} | {row['median_ms'] / base:.2f}x | "
            f"{row.get('walks', '')} |"
        )


if __name__ == "__main__":
    main()
