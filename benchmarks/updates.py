"""Updating an index after a few objects changed: in place against a
complete new build.

    python benchmarks/updates.py [--objects 10000] [--storage database,pgvector]
        [--edit rewrite|append] [--profile]

N books (``tests.testapp.models.Book``: ``max_chunk_tokens`` 24, so each
book's 200-word blurb makes about 10 chunks: 10,000 books, about 100,000
chunks) are indexed at 1,536 dimensions against a loopback provider in a
process of its own (50 ms per embedding request, embedding cache off, so
every chunk embedded is a provider call). Then, twice, 1% of the books get a
new blurb and ``manage.py update_vector_indexes --noinput`` runs: once as it
runs by default (in place), once with ``--rebuild`` (a complete new build
reusing the unchanged vectors, what every update did before). Both runs
embed the same number of new chunks; the table puts them side by side
(ratio: in place over rebuild). Each storage runs in a process of its own.
Books, not pages, so that making 10,000 objects takes seconds (pages add
their tree queries to the plan, the same for both runs).

With ``--edit append`` the changed books get a sentence added at the end of
their blurb instead of a new one: only their last chunks change, the usual
shape of an edit (an update in place then writes only those rows).

``--profile`` prints, for the in-place run, the functions taking the most
time (cProfile, main thread: the embedding requests run in worker threads)
and the SQL statements taking the most time, grouped by their first words.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench_common import RemoteProvider

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

WORDS = (
    "garden tomato rose pruning spring soil water sun bread flour yeast oven "
    "telescope planet star galaxy night bicycle rain jacket road river bridge "
    "mountain forest winter summer autumn harbour market village castle"
).split()


def blurb(number: int, edition: int = 0) -> str:
    """About 200 words, different for each book and edition."""
    words = [WORDS[(number * 7 + edition * 13 + i) % len(WORDS)] for i in range(200)]
    return " ".join(words) + f" book{number} edition{edition}"


def change(books: list, edition: int, edit: str = "rewrite") -> None:
    """``rewrite``: a new blurb (every chunk's text changes); ``append``: a
    sentence added at its end (only the last chunks change)."""
    from tests.testapp.models import Book

    for book in books:
        if edit == "append":
            book.blurb = f"{book.blurb} Revised for edition {edition}."
        else:
            book.blurb = blurb(book.pk, edition)
    Book.objects.bulk_update(books, ["blurb"], batch_size=500)


@contextmanager
def sql_timing(statements: dict) -> Iterator[None]:
    """Time every SQL statement run inside, by its first 100 characters with
    numbers blanked out (so that one shape is one line)."""
    from django.db import connection

    def timed(execute, sql, params, many, context):  # noqa: ANN001
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = re.sub(r"\d+", "N", " ".join(str(sql).split()))[:100]
            entry = statements[shape]
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    with connection.execute_wrapper(timed):
        yield


def profile_report(profiler: cProfile.Profile, statements: dict) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(20)
    out.write("SQL (count, seconds; COPY and server-side cursors' fetches not seen):\n")
    ranked = sorted(statements.items(), key=lambda item: -item[1][1])
    for shape, (count, seconds) in ranked[:15]:
        out.write(f"{count:8d} {seconds:8.3f}  {shape}\n")
    return out.getvalue()


def timed_update(server: RemoteProvider, *options: str, profile: bool = False) -> dict:
    from django.core.management import call_command

    before = server.count("/v1/embeddings")
    out = io.StringIO()
    profiler = cProfile.Profile() if profile else None
    statements: dict = defaultdict(lambda: [0, 0.0])
    started = time.perf_counter()
    with sql_timing(statements):
        if profiler is not None:
            profiler.enable()
        call_command(
            "update_vector_indexes", "testapp.book", "--noinput", *options, stdout=out
        )
        if profiler is not None:
            profiler.disable()
    seconds = time.perf_counter() - started
    result = {
        "seconds": seconds,
        "calls": server.count("/v1/embeddings") - before,
        "output": out.getvalue().strip().splitlines()[-2:],
    }
    if profiler is not None:
        result["profile"] = profile_report(profiler, statements)
    return result


def measure(
    storage: str, objects: int, profile: bool = False, edit: str = "rewrite"
) -> dict:
    from indexes import BUILD_MEMORY, setup_django

    setup_django(storage)
    from django.db import connection
    from django.test.utils import override_settings

    from tests.testapp.models import Book
    from tests.utils import embedding_backend_settings
    from wagtail_vector_index.models import IndexState

    server = RemoteProvider(latency=0.05, dimensions=1536)
    os.environ["OPENAI_API_KEY"] = "sk-bench"
    from django.conf import settings as django_settings

    settings = {
        # tests.settings_postgres names the pgvector storage.
        **{
            key: value
            for key, value in getattr(
                django_settings, "WAGTAIL_VECTOR_INDEX", {}
            ).items()
            if key == "STORAGE"
        },
        "EMBEDDING_BACKENDS": {
            "default": embedding_backend_settings(
                server,
                EMBEDDING_OUTPUT_DIMENSIONS=1536,
                BATCH_SIZE=256,
                DEFAULT_PARAMETERS={"timeout": 60},
            )
        },
        "EMBEDDING_CACHE": {"ENABLED": False},
    }
    try:
        Book.objects.bulk_create(
            (Book(title=f"Book {n}", blurb=blurb(n)) for n in range(objects)),
            batch_size=1_000,
        )
        with override_settings(WAGTAIL_VECTOR_INDEX=settings):
            index = Book.vector_index
            storage = index.storage
            if hasattr(storage, "hnsw_maintenance_work_mem"):
                type(storage).hnsw_maintenance_work_mem = BUILD_MEMORY
            index.embedding_backend.embed_matrix(["warm-up"])
            started = time.perf_counter()
            first = index.update()
            result = {
                "storage": storage,
                "vendor": connection.vendor,
                "objects": objects,
                "chunks": first.chunks,
                "first_s": time.perf_counter() - started,
            }
            result["storage"] = storage.__class__.__name__
            books = list(Book.objects.order_by("pk"))
            share = max(1, objects // 100)
            change(books[:share], 1, edit)
            result["in_place"] = timed_update(server, profile=profile)
            change(books[share : 2 * share], 1, edit)
            result["rebuild"] = timed_update(server, "--rebuild")
            state = IndexState.objects.get(index_name=index.name)
            result["chunk_count"] = state.chunk_count
            result["edit"] = edit
            result["changed"] = share
    finally:
        server.stop()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--storage", default="database")
    parser.add_argument(
        "--profile", action="store_true", help="profile the in-place update"
    )
    parser.add_argument(
        "--edit",
        choices=["rewrite", "append"],
        default="rewrite",
        help="how the changed books change: a new blurb, or a sentence appended",
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    storages = [name.strip() for name in args.storage.split(",") if name.strip()]
    if args.json:
        result = measure(storages[0], args.objects, args.profile, args.edit)
        print(json.dumps(result))
        return
    results = []
    for storage in storages:
        print(f"{storage}...", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--json", "--storage", storage]
        command += ["--objects", str(args.objects), "--edit", args.edit]
        if args.profile:
            command.append("--profile")
        output = subprocess.run(command, check=True, capture_output=True, text=True)
        results.append(json.loads(output.stdout.strip().splitlines()[-1]))
    print(f"Changed books: {args.edit} (--edit)\n")
    print(
        "| storage | objects | chunks | first build s | 1% changed: in place s "
        "| provider calls | --rebuild s | provider calls | in place / rebuild |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for result in results:
        in_place, rebuild = result["in_place"], result["rebuild"]
        print(
            f"| {result['storage']} ({result['vendor']}) | {result['objects']:,} | "
            f"{result['chunks']:,} | {result['first_s']:.1f} | "
            f"{in_place['seconds']:.2f} | {in_place['calls']} | "
            f"{rebuild['seconds']:.2f} | {rebuild['calls']} | "
            f"{in_place['seconds'] / rebuild['seconds']:.2f} |"
        )
    for result in results:
        for run in ("in_place", "rebuild"):
            print(f"\n{result['storage']}, {run}: " + " / ".join(result[run]["output"]))
    for result in results:
        if "profile" in result["in_place"]:
            print(f"\n## {result['storage']}, in place, profile\n")
            print(result["in_place"]["profile"])


if __name__ == "__main__":
    main()
