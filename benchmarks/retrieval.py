"""Retrieval benchmark: latency of each search mode, and of a narrow filter.

    python benchmarks/retrieval.py [--quick] [--storage database,pgvector]

``ArticlePage.vector_index.search_results(query, limit=10, mode=m)`` for m
in vector, keyword and hybrid, and the same with a filter keeping 1% of the
pages (``filter=Page.objects.descendant_of(section)``), over 1,000 and
10,000 live, public pages of 10 chunks each (10,000 and 100,000 chunks;
100 and 1,000 pages with --quick). Each storage runs in a process of its own,
one after the other (PostgreSQL: a throwaway pgserver with pgvector, as in
indexes.py); the cases of one size are timed interleaved, query by query, so
that their ratios to the vector mode hold on a busy machine. Each size runs
its 40 queries twice (24 once with --quick), but starts no new query after
150 seconds (30) of searching once 8 have run: SQLite's keyword searches
take seconds each at 10,000 pages.

The pages are real pages: tree rows written in bulk (``add_child`` costs
milliseconds a page), indexed by the site's Wagtail search backend (its
``add_bulk``: SQLite FTS5 or PostgreSQL full-text search), about 600 words
of body each from a vocabulary of topics. Their chunks are stored straight
into the vector storage: 10 per page, each a 60-word slice of the body, with
a random 1,536-dimension unit vector (search cost does not depend on the
values), so the corpus needs no embedding. The query's vector comes from a
stand-in embedding backend returning a random unit vector at once: the
benchmark measures searching, not the provider's embedding call (which adds
its own round trip to the vector and hybrid modes, and nothing to keyword).
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
from typing import Any

from bench_common import percentile

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent
sys.path.insert(0, str(REPOSITORY))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from indexes import BUILD_MEMORY, setup_django  # noqa: E402

DIMENSIONS = 1536
CHUNKS_PER_PAGE = 10
WORDS_PER_CHUNK = 60
#: One page in FILTER_EVERY is in the filtered section (1%).
FILTER_EVERY = 100

#: Words of each topic; a page draws most of its body from one topic.
TOPICS = [
    "garden tomato rose compost soil seed prune hedge lawn weed bulb shrub "
    "greenhouse orchard mulch",
    "bread oven flour yeast dough butter sugar cake pastry recipe bake knead "
    "crust biscuit loaf",
    "bicycle wheel saddle chain brake gear pedal tyre frame helmet mudguard "
    "cyclist route climb sprint",
    "planet star telescope galaxy orbit comet moon saturn nebula eclipse "
    "astronomer meteor asteroid lens observatory",
    "rain river flood storm cloud thunder drought forecast snow wind frost "
    "humidity valley stream delta",
    "guitar piano violin concert melody rhythm chord orchestra drum choir "
    "song opera tempo harmony album",
    "football goal referee stadium league striker keeper match season coach "
    "penalty tackle trophy pitch fans",
    "castle king queen empire battle medieval knight siege dynasty throne "
    "archive treaty revolution monarch chronicle",
    "doctor nurse hospital vaccine patient surgery fever clinic medicine "
    "symptom diagnosis therapy virus injury recovery",
    "laptop software keyboard server database network browser password "
    "router backup cloud code monitor printer update",
    "train station ticket platform railway carriage timetable tunnel bridge "
    "engine signal journey passenger freight track",
    "ocean whale coral reef dolphin shark tide harbour sailor island beach "
    "wave lighthouse shell fisherman",
]
COMMON = (
    "time year people way day thing world life hand part place case week "
    "group system question work number night point home water room area "
    "money story fact month study book eye job word issue side kind head "
    "house friend power hour game line end member city name team minute "
    "idea body information level office door health person art history "
    "result change morning reason moment air force"
).split()


def vocabulary() -> list[list[str]]:
    return [topic.split() for topic in TOPICS]


def queries(count: int) -> list[str]:
    """``count`` queries of one to three words: most from one topic, some
    across two, a few with a common word."""
    import numpy as np

    rng = np.random.default_rng(3)
    topics = vocabulary()
    result = []
    for number in range(count):
        topic = topics[number % len(topics)]
        words = list(rng.choice(topic, size=1 + number % 3, replace=False))
        if number % 5 == 4:
            other = topics[(number + 5) % len(topics)]
            words[-1] = str(rng.choice(other))
        if number % 7 == 6:
            words.append(str(rng.choice(COMMON)))
        result.append(" ".join(words))
    return result


def topic_of(number: int) -> int:
    """Page ``number``'s topic: evenly spread, within the filter's pages too
    (one in FILTER_EVERY)."""
    return (number + number // FILTER_EVERY) % len(TOPICS)


def page_text(rng: Any, number: int) -> list[str]:
    """The body of page ``number``, as its chunks: two words in three from
    its topic, the rest common words."""
    import numpy as np

    topic = np.array(vocabulary()[topic_of(number)])
    common = np.array(COMMON)
    size = CHUNKS_PER_PAGE * WORDS_PER_CHUNK
    words = np.where(
        rng.random(size) < 2 / 3,
        rng.choice(topic, size=size),
        rng.choice(common, size=size),
    )
    return [
        " ".join(words[start : start + WORDS_PER_CHUNK])
        for start in range(0, size, WORDS_PER_CHUNK)
    ]


class StandInEmbeddings:
    """An embedding backend that answers at once with a random unit vector
    (the storage's state names its model and dimensions)."""

    class config:  # noqa: N801 (the attribute's name on real backends)
        model_id = "bench"
        token_limit = 8191

    embedding_output_dimensions = DIMENSIONS

    def __init__(self) -> None:
        import numpy as np

        self.rng = np.random.default_rng(11)

    def embed_matrix(self, texts: list[str]) -> Any:
        vectors = self.rng.standard_normal((len(texts), DIMENSIONS))
        return vectors / (vectors**2).sum(axis=1, keepdims=True) ** 0.5


# -- the corpus ----------------------------------------------------------------


def make_tree() -> tuple[Any, Any]:
    """Home, with two sections: "narrow" (the filter's 1%) and "wide"."""
    from wagtail.models import Page

    root = Page.get_first_root_node()
    home = root.add_child(instance=Page(title="Bench home", slug="bench-home"))
    narrow = home.add_child(instance=Page(title="Narrow", slug="narrow"))
    wide = home.add_child(instance=Page(title="Wide", slug="wide"))
    return narrow, wide


def add_pages(section: Any, numbers: list[int], rng: Any) -> dict[int, list[str]]:
    """Live, public ArticlePages under ``section``, their tree rows and
    their search index entries written in bulk: {pk: chunk texts}."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection, transaction
    from django.db.models import F
    from django.utils import timezone
    from wagtail.models import Page
    from wagtail.search.backends import get_search_backend

    from tests.testapp.models import ArticlePage

    if not numbers:
        return {}
    parent = Page.objects.get(pk=section.pk)
    content_type = ContentType.objects.get_for_model(ArticlePage)
    now = timezone.now()
    texts = {number: page_text(rng, number) for number in numbers}
    pages = []
    for step, number in enumerate(numbers, start=parent.numchild + 1):
        title = f"{TOPICS[topic_of(number)].split()[0].title()} page {number}"
        pages.append(
            Page(
                path=Page._get_path(parent.path, parent.depth + 1, step),
                depth=parent.depth + 1,
                numchild=0,
                title=title,
                draft_title=title,
                slug=f"p{number}",
                url_path=f"{parent.url_path}p{number}/",
                content_type=content_type,
                locale_id=parent.locale_id,
                live=True,
                has_unpublished_changes=False,
                first_published_at=now,
                last_published_at=now,
            )
        )
    table = connection.ops.quote_name(ArticlePage._meta.db_table)
    with transaction.atomic():
        created = Page.objects.bulk_create(pages, batch_size=500)
        rows = [
            (page.pk, "", "<p>" + " ".join(texts[number]) + "</p>", "")
            for page, number in zip(created, numbers, strict=True)
        ]
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} (page_ptr_id, intro, body, summary) "  # noqa: S608
                "VALUES (%s, %s, %s, %s)",
                rows,
            )
        Page.objects.filter(pk=parent.pk).update(numchild=F("numchild") + len(pages))
    backend = get_search_backend()
    pks = [page.pk for page in created]
    for start in range(0, len(pks), 1_000):
        batch = ArticlePage.objects.filter(pk__in=pks[start : start + 1_000])
        backend.add_bulk(ArticlePage, list(batch))
    return {
        page.pk: texts[number] for page, number in zip(created, numbers, strict=True)
    }


def fill(index: Any, pages: dict[int, list[str]], rng: Any) -> Any:
    """A new build of ``index`` holding every page's chunks, with random
    unit vectors; activated. Returns the storage."""
    import numpy as np
    from django.contrib.contenttypes.models import ContentType

    from tests.testapp.models import ArticlePage
    from wagtail_vector_index.index.storage import ChunkRow

    storage = index.storage
    if hasattr(storage, "hnsw_maintenance_work_mem"):
        storage.hnsw_maintenance_work_mem = BUILD_MEMORY  # See indexes.py.
    content_type = ContentType.objects.get_for_model(ArticlePage).pk
    build = storage.next_build()
    items = list(pages.items())
    batch = 500  # Pages: 5,000 chunks.
    for start in range(0, len(items), batch):
        part = items[start : start + batch]
        vectors = rng.standard_normal((len(part) * CHUNKS_PER_PAGE, DIMENSIONS))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors.astype(np.float32)
        storage.write_build(
            build,
            (
                ChunkRow(
                    content_type,
                    str(pk),
                    position,
                    text,
                    f"{pk}-{position}",
                    vectors[offset * CHUNKS_PER_PAGE + position],
                )
                for offset, (pk, chunks) in enumerate(part)
                for position, text in enumerate(chunks)
            ),
        )
    storage.activate(
        build, model_id="bench", dimensions=DIMENSIONS, object_count=len(pages)
    )
    return storage


# -- measuring -------------------------------------------------------------------


def cases(narrow: Any) -> list[tuple[str, str, dict[str, Any]]]:
    from wagtail.models import Page

    section = Page.objects.descendant_of(narrow)
    return [
        ("vector", "vector", {}),
        ("keyword", "keyword", {}),
        ("hybrid", "hybrid", {}),
        ("vector, 1% filter", "vector", {"filter": section}),
        ("keyword, 1% filter", "keyword", {"filter": section}),
        ("hybrid, 1% filter", "hybrid", {"filter": section}),
    ]


def measure_size(
    index: Any, narrow: Any, words: list[str], rounds: int, budget: float
) -> dict:
    """Every case over every query, ``rounds`` times, interleaved (each query
    runs its cases in turn, starting from a different one each time); no new
    query after ``budget`` seconds once every case has run 8 searches."""
    chosen = cases(narrow)
    timings: dict[str, list[float]] = {label: [] for label, _, _ in chosen}
    empty: dict[str, int] = {label: 0 for label, _, _ in chosen}
    started = time.perf_counter()
    index.search_results(words[0], limit=10, mode="vector")  # Loads/warms.
    first = time.perf_counter() - started
    for _label, mode, extra in chosen:  # Warms every path once.
        index.search_results(words[0], limit=10, mode=mode, **extra)
    began = time.perf_counter()
    for number, query in enumerate(words * rounds):
        if number >= 8 and time.perf_counter() - began > budget:
            break
        shift = (number + number // len(words)) % len(chosen)
        for label, mode, extra in chosen[shift:] + chosen[:shift]:
            started = time.perf_counter()
            results = index.search_results(query, limit=10, mode=mode, **extra)
            timings[label].append(time.perf_counter() - started)
            if not results:
                empty[label] += 1
    return {
        "first_ms": first * 1000,
        "cases": [
            {
                "case": label,
                "searches": len(timings[label]),
                "median_ms": statistics.median(timings[label]) * 1000,
                "p95_ms": percentile(timings[label], 0.95) * 1000,
                "empty": empty[label],
            }
            for label, _, _ in chosen
        ],
    }


def measure(storage: str, quick: bool) -> dict:
    """Every size for one storage, in this process."""
    from unittest import mock

    import numpy as np
    from django.db import connection

    setup_django(storage)
    from tests.testapp.models import ArticlePage
    from wagtail_vector_index.index.base import VectorIndex

    sizes = [100, 1_000] if quick else [1_000, 10_000]  # Pages.
    words = queries(24 if quick else 40)
    rounds = 1 if quick else 2
    budget = 30 if quick else 150  # Seconds of searching per size.
    rng = np.random.default_rng(42)
    narrow, wide = make_tree()
    index = ArticlePage.vector_index
    pages: dict[int, list[str]] = {}
    results = []
    backend = StandInEmbeddings()
    with mock.patch.object(
        VectorIndex, "embedding_backend", property(lambda self: backend)
    ):
        for size in sizes:
            numbers = list(range(len(pages), size))
            started = time.perf_counter()
            pages.update(
                add_pages(narrow, [n for n in numbers if n % FILTER_EVERY == 0], rng)
            )
            pages.update(add_pages(wide, [n for n in numbers if n % FILTER_EVERY], rng))
            pages_seconds = time.perf_counter() - started
            started = time.perf_counter()
            fill(index, pages, rng)
            fill_seconds = time.perf_counter() - started
            row = measure_size(index, narrow, words, rounds, budget)
            row.update(
                pages=len(pages),
                chunks=len(pages) * CHUNKS_PER_PAGE,
                filtered_pages=sum(1 for n in range(size) if n % FILTER_EVERY == 0),
                pages_s=pages_seconds,
                fill_s=fill_seconds,
                vendor=connection.vendor,
                queries=len(words),
            )
            results.append(row)
            print(f"{storage}: {size:,} pages done", file=sys.stderr, flush=True)
    from wagtail.search.backends import get_search_backend

    return {
        "storage": storage,
        "search_backend": type(get_search_backend()).__name__,
        "sizes": results,
    }


def run_each(storages: list[str], quick: bool) -> dict:
    """One new process per storage (Django is set up once per process)."""
    results = {}
    for storage in storages:
        command = [sys.executable, __file__, "--storage", storage, "--json"]
        command += ["--quick"] * quick
        print(f"{storage}...", file=sys.stderr, flush=True)
        output = subprocess.run(
            command, check=True, stdout=subprocess.PIPE, text=True
        ).stdout
        results[storage] = json.loads(output.strip().splitlines()[-1])
    return results


def report(results: dict, seconds: float) -> None:
    load = os.getloadavg()
    print(
        f"- date: {time.strftime('%Y-%m-%d')}\n"
        f"- machine: {os.cpu_count()} cores, load average {load[0]:.2f} / "
        f"{load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min) at the end\n"
        f"- command: python benchmarks/retrieval.py {' '.join(sys.argv[1:])}\n"
        f"- total run time: {seconds:.0f} s\n"
    )
    for storage, result in results.items():
        first = result["sizes"][0]
        print(
            f"\n### {storage} storage, keyword search by "
            f"{result['search_backend']} ({first['vendor']}), "
            f"{first['queries']} queries\n"
        )
        print(
            "| pages | chunks | case | searches | median ms | p95 ms | "
            "median ratio to vector | empty results |"
        )
        print("| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
        for size in result["sizes"]:
            base = size["cases"][0]["median_ms"]
            for case in size["cases"]:
                print(
                    f"| {size['pages']:,} | {size['chunks']:,} | {case['case']} | "
                    f"{case['searches']} | {case['median_ms']:.2f} | "
                    f"{case['p95_ms']:.2f} | {case['median_ms'] / base:.2f}x | "
                    f"{case['empty']} |"
                )
        print()
        for size in result["sizes"]:
            print(
                f"- {size['pages']:,} pages ({size['filtered_pages']:,} in the "
                f"filter): pages written and search-indexed in "
                f"{size['pages_s']:.1f} s, chunks written and activated in "
                f"{size['fill_s']:.1f} s, first vector search "
                f"{size['first_ms']:.0f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 pages")
    parser.add_argument(
        "--storage",
        default="database",
        help="database, pgvector, or both: database,pgvector",
    )
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    storages = [name.strip() for name in args.storage.split(",") if name.strip()]
    unknown = set(storages) - {"database", "pgvector"}
    if unknown or not storages:
        parser.error(f"unknown storage: {', '.join(sorted(unknown)) or '(none)'}")
    if args.json:
        (storage,) = storages
        print(json.dumps(measure(storage, args.quick)))
        return
    started = time.monotonic()
    results = run_each(storages, args.quick)
    report(results, time.monotonic() - started)


if __name__ == "__main__":
    main()
