"""The default storage after a publish: the journal against a full reload.

    python benchmarks/default_storage.py [--chunks 100000] [--publishes 5]

One index of ``--chunks`` chunks of 1,536 dimensions (random unit vectors)
with page-like texts of about 1,500 characters, in a SQLite file. Two
readers stand for two other processes, each with its in-memory copy of the
index: "before" is ``DatabaseStorage`` as it was at ``--before`` (read from
git: it reloads the whole index, texts included, whenever the revision
changes), "after" is this checkout's (it applies the journal). A third
storage, the writer, publishes: ``apply_changes`` of one object with 10
chunks. After each publish each reader makes its next search; warm searches
(no publish in between) are timed alternately. Every timed search includes
reading the index's state, as ``VectorIndex.search`` does.

Memory: each reader's copy dropped (``forget()``) and loaded again under
``tracemalloc`` (untimed): "held" is what is still allocated after the search
(the copy), "peak" the most allocated while loading. NumPy's buffers are
traced too; the "after" figure includes the buffer's headroom for appended
rows (allocated, not touched until used: not resident).
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench_common import Table, machine, progress
from indexes import setup_django

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent
DIMENSIONS = 1536
INDEX = "bench-default-storage"
#: The commit whose DatabaseStorage is "before" (the parent of the journal).
BEFORE = "6dc6aac"
WORDS = (
    "garden roses prune spring summer autumn winter soil compost water light "
    "shade flower leaf root stem seed plant grow bloom colour tree shrub hedge "
    "lawn path wall border bed pot greenhouse frost rain wind sun warm cold "
    "early late season month week day morning evening careful gentle quick"
).split()


def before_class(revision: str) -> type:
    """``DatabaseStorage`` as it was at ``revision``, from git."""
    source = subprocess.run(
        ["git", "show", f"{revision}:wagtail_vector_index/index/storage/database.py"],
        cwd=REPOSITORY,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "database_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("database_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["database_before"] = module  # dataclasses look it up.
    spec.loader.exec_module(module)
    return module.DatabaseStorage


def page_texts(count: int, rng: Any) -> list[str]:
    """``count`` different texts of about 1,500 characters."""
    texts = []
    for _ in range(count):
        words = rng.choice(WORDS, size=260)
        texts.append(" ".join(words)[:1_500])
    return texts


def fill(writer: Any, chunks: int, rng: Any) -> Any:
    import numpy as np
    from django.contrib.contenttypes.models import ContentType

    from wagtail_vector_index.index.storage import ChunkRow

    content_type = ContentType.objects.get(app_label="testapp", model="book")
    texts = page_texts(500, rng)
    build = writer.next_build()
    batch = 5_000
    for start in range(0, chunks, batch):
        vectors = rng.standard_normal((min(batch, chunks - start), DIMENSIONS))
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        writer.write_build(
            build,
            (
                ChunkRow(
                    content_type.pk,
                    str(start + i),
                    0,
                    # Each text its own string, as read from the database.
                    f"{texts[(start + i) % len(texts)]} {start + i}",
                    f"{start + i}",
                    vector,
                )
                for i, vector in enumerate(vectors.astype(np.float32))
            ),
        )
    writer.activate(build, model_id="bench", dimensions=DIMENSIONS, object_count=chunks)
    return content_type.pk


def reader(cls: type) -> Any:
    """A storage standing for another process: a cache and lock of its own."""
    storage = cls(INDEX)
    storage._cache = {}
    storage._lock = threading.Lock()
    return storage


def timed_search(storage: Any, vector: Any) -> float:
    started = time.perf_counter()
    hits = storage.search(storage.state(), vector, 5)
    elapsed = time.perf_counter() - started
    if len(hits) != 5 or not all(hit.text for hit in hits):
        raise RuntimeError(f"{type(storage).__module__}: wrong hits {hits}")
    return elapsed


def traced(storage: Any, vector: Any) -> tuple[float, float, float]:
    """Seconds, MB held and MB at the peak of a full load under tracemalloc."""
    storage.forget()
    tracemalloc.start()
    try:
        started = time.perf_counter()
        storage.search(storage.state(), vector, 5)
        elapsed = time.perf_counter() - started
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return elapsed, held / 2**20, peak / 2**20


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    setup_django("database")
    from wagtail_vector_index.index.storage import ChunkRow, DatabaseStorage

    rng = np.random.default_rng(3)
    old_cls = before_class(args.before)
    writer = DatabaseStorage(INDEX)
    progress(f"Writing {args.chunks:,} chunks...")
    started = time.perf_counter()
    content_type = fill(writer, args.chunks, rng)
    progress(f"  {time.perf_counter() - started:.0f} s")
    before, after = reader(old_cls), reader(DatabaseStorage)

    def query() -> Any:
        return rng.standard_normal(DIMENSIONS).astype(np.float32)

    result: dict[str, Any] = {"chunks": args.chunks}
    progress("Full loads (timed) and memory (tracemalloc, untimed)...")
    loads: dict[str, list[float]] = {"before": [], "after": []}
    pair = [("before", before), ("after", after)]
    for _ in range(args.loads):
        # The second load of a pair is the slower (the memory the first one
        # freed and took): the order alternates.
        for name, storage in pair:
            storage.forget()
            loads[name].append(timed_search(storage, query()))
        pair.reverse()
    for name, storage in (("before", before), ("after", after)):
        result[f"{name}_load_s"] = statistics.median(loads[name])
        _, held, peak = traced(storage, query())
        result[f"{name}_held_mb"], result[f"{name}_peak_mb"] = held, peak
        timed_search(storage, query())  # Warm again, outside tracemalloc.

    progress("Warm searches...")
    warm: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.queries):
        for name, storage in (("before", before), ("after", after)):
            warm[name].append(timed_search(storage, query()))

    progress(f"{args.publishes} publishes, each followed by a search per reader...")
    published: list[float] = []
    following: dict[str, list[float]] = {"before": [], "after": []}
    texts = page_texts(10, rng)
    for number in range(args.publishes):
        object_id = str(number * 97 % args.chunks)
        vectors = rng.standard_normal((10, DIMENSIONS)).astype(np.float32)
        rows = [
            ChunkRow(content_type, object_id, i, texts[i], f"p{number}:{i}", v)
            for i, v in enumerate(vectors)
        ]
        started = time.perf_counter()
        writer.apply_changes(writer.state(), {(content_type, object_id): rows})
        published.append(time.perf_counter() - started)
        for name, storage in (("after", after), ("before", before)):
            following[name].append(timed_search(storage, vectors[3]))
        hit = after.search(after.state(), vectors[3], 1)[0]
        if (hit.object_id, hit.position, hit.text) != (object_id, 3, texts[3]):
            raise RuntimeError(f"the published chunk is not found: {hit}")
    copy = after._cache[INDEX]
    result.update(
        warm={name: statistics.median(times) * 1000 for name, times in warm.items()},
        following={
            name: statistics.median(times) * 1000 for name, times in following.items()
        },
        following_max={name: max(times) * 1000 for name, times in following.items()},
        publish_ms=statistics.median(published) * 1000,
        after_rows=(copy.count, copy.live, copy.rows.capacity),
    )
    return result


def tables(result: dict[str, Any], args: argparse.Namespace) -> list[Table]:
    warm, following = result["warm"], result["following"]
    peak_max = result["following_max"]

    def r(a: float, b: float) -> str:
        return f"{b / a:.3f}x"

    main = Table(
        f"Default storage, {result['chunks']:,} chunks x {DIMENSIONS} dimensions, "
        "texts of ~1,500 characters",
        [
            "",
            f"before ({args.before}: full reload)",
            "after (journal)",
            "after / before",
        ],
    )
    main.rows = [
        [
            "warm search, median ms",
            f"{warm['before']:.2f}",
            f"{warm['after']:.2f}",
            r(warm["before"], warm["after"]),
        ],
        [
            "first search after a publish, median ms (max)",
            f"{following['before']:.1f} ({peak_max['before']:.1f})",
            f"{following['after']:.2f} ({peak_max['after']:.2f})",
            r(following["before"], following["after"]),
        ],
        [
            "first search after a publish / warm search",
            f"{following['before'] / warm['before']:.1f}x",
            f"{following['after'] / warm['after']:.2f}x",
            "",
        ],
        [
            "full load (forget(), then a search), median s",
            f"{result['before_load_s']:.2f}",
            f"{result['after_load_s']:.2f}",
            r(result["before_load_s"], result["after_load_s"]),
        ],
        [
            "memory held by the loaded index, MB",
            f"{result['before_held_mb']:.0f}",
            f"{result['after_held_mb']:.0f}",
            r(result["before_held_mb"], result["after_held_mb"]),
        ],
        [
            "peak while loading, MB",
            f"{result['before_peak_mb']:.0f}",
            f"{result['after_peak_mb']:.0f}",
            r(result["before_peak_mb"], result["after_peak_mb"]),
        ],
    ]
    count, live, capacity = result["after_rows"]
    main.notes = [
        f"{args.loads} full loads (in alternating order) and {args.queries} warm "
        "searches per reader, alternating; "
        f"{args.publishes} publishes (apply_changes of one object with 10 "
        "chunks), each followed by one search per reader.",
        f"publish (apply_changes with the journal), median: "
        f"{result['publish_ms']:.1f} ms.",
        f"after the publishes the 'after' copy has {count:,} rows ({live:,} "
        f"live) in a buffer of {capacity:,}.",
        "memory: tracemalloc around an untimed full load (NumPy buffers "
        "included; 'after' includes the unused headroom).",
    ]
    ratio = following["after"] / warm["after"]
    targets = Table("Targets", ["target", "measured", "met"])
    targets.rows = [
        [
            "first search after a publish within 2x of a warm search",
            f"{ratio:.2f}x",
            "yes" if ratio <= 2 else "NO",
        ]
    ]
    return [main, targets]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--publishes", type=int, default=5)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--loads", type=int, default=4, help="timed full loads")
    parser.add_argument("--before", default=BEFORE, help="git revision of 'before'")
    parser.add_argument("--markdown", action="store_true", help="print markdown")
    args = parser.parse_args()
    started = time.monotonic()
    result = measure(args)
    command = f"python benchmarks/default_storage.py {' '.join(sys.argv[1:])}"
    header = machine(None) + [
        f"command: {command.rstrip()}",
        f"total run time: {time.monotonic() - started:.0f} s",
    ]
    found = tables(result, args)
    if args.markdown:
        print("\n".join(f"- {line}" for line in header) + "\n")
        print("\n\n".join(table.markdown() for table in found))
    else:
        print("\n".join(header) + "\n")
        print("\n\n".join(table.text() for table in found))


if __name__ == "__main__":
    main()
