"""Embedding throughput benchmark: 5,000 inputs, 50 ms per request.

    python benchmarks/throughput.py [--quick] [--with-old] [--markdown]
                                    [--json FILE]

The loopback server (``tests/providers.py``, 127.0.0.1) answers each request
after 50 ms: batched ``aembed``, the same batches sent by hand with
``litellm.aembedding``, one request per input, the floor, sync ``embed``.
From the repository root, with the package installed in the running Python;
``run.py`` runs this with the other benchmarks.

The embeddings are timed in a child process, ``throughput.py measure --impl
current|old``, run with this Python or with the venv of wagtail-vector-index
0.10.0 (``--with-old``: ``benchmarks/.venv-old`` unless ``--old-venv``, created
on first use).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from typing import Any

from bench_common import (
    CURRENT,
    LABELS,
    OLD,
    Benchmark,
    OldEnvironment,
    RemoteProvider,
    Table,
    add_old_note,
    columns,
    error_text,
    failed,
    progress,
    ratio,
    run_workers,
    script,
    target,
    unmeasured,
    where,
)

EMBEDDING_BACKEND = (
    "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMEmbeddingBackend"
)
EMBEDDING_MODEL = "openai/bench-embed"


def add_options(parser: argparse.ArgumentParser) -> None:
    """None: the sizes are fixed, so the figures stay comparable."""


def settle(args: argparse.Namespace) -> None:
    args.inputs = 5000
    args.per_input_cap = 200 if args.quick else 500
    args.batch_size, args.concurrency, args.latency = 100, 4, 0.05
    # What OpenAI's text-embedding-3-small and ada-002 return.
    args.dimensions = 1536


# -- in the child process (this checkout's or the older release's Python) ----


def embedding_backend(
    server: Any, *, batch_size: int, concurrency: int, dimensions: int
) -> Any:
    from wagtail_vector_index.ai_utils.backends import get_embedding_backend

    return get_embedding_backend(
        backend_dict={
            "CLASS": EMBEDDING_BACKEND,
            "CONFIG": {
                "MODEL_ID": EMBEDDING_MODEL,
                "TOKEN_LIMIT": 8191,
                "EMBEDDING_OUTPUT_DIMENSIONS": dimensions,
                "BATCH_SIZE": batch_size,
                "MAX_CONCURRENCY": concurrency,
                "DEFAULT_PARAMETERS": {"api_base": server.openai_base},
            },
        },
        backend_id="default",
    )


#: Rounds of the fast rows (aembed, aembed_matrix, embed), interleaved; each
#: row reports its median round (by time; CPU is the median of its own).
ROUNDS = 3


async def timed_rounds(
    server: Any, calls: dict[str, Any], count: int
) -> dict[str, dict[str, Any]]:
    """Each of ``calls`` timed ``ROUNDS`` times, in turn: a row's median
    round, with the median CPU per vector of its rounds."""
    import statistics

    found: dict[str, list[dict[str, Any]]] = {name: [] for name in calls}
    for _round in range(ROUNDS):
        for name, call in calls.items():
            found[name].append(await timed(server, call, count))
    results = {}
    for name, rounds in found.items():
        if failed_round := next((r for r in rounds if "seconds" not in r), None):
            results[name] = failed_round
            continue
        by_time = sorted(rounds, key=lambda r: r["seconds"])
        row = dict(by_time[len(by_time) // 2])
        row["cpu_ms_per_vector"] = statistics.median(
            r["cpu_ms_per_vector"] for r in rounds
        )
        row["rounds"] = [round(r["seconds"], 3) for r in rounds]  # Run order.
        results[name] = row
    return results


async def timed(server: Any, call: Any, count: int) -> dict[str, Any]:
    server.reset()
    started = time.perf_counter()
    cpu = time.process_time()  # The server runs in another process.
    try:
        vectors = await call()
    except Exception as error:  # Reported in the table.
        return {"error": error_text(error), "where": where(error)}
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    vectors = list(vectors)
    result = {
        "seconds": seconds,
        "cpu_ms_per_vector": 1000 * cpu / max(1, len(vectors)),
        "inputs": count,
        "vectors": len(vectors),
        "requests": server.count("/v1/embeddings"),
        "max_in_flight": server.max_in_flight(),
    }
    if len(vectors) != count:
        result["error"] = f"returned {len(vectors)} vectors for {count} inputs"
    return result


async def embed_all(args: argparse.Namespace) -> dict[str, Any]:
    server = RemoteProvider(dimensions=args.dimensions)
    inputs = [
        f"Short input {i}: a paragraph of a Wagtail page." for i in range(args.inputs)
    ]
    subset = inputs[: args.per_input_cap]
    batched = embedding_backend(
        server,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        dimensions=args.dimensions,
    )
    per_input = embedding_backend(
        server, batch_size=1, concurrency=args.concurrency, dimensions=args.dimensions
    )
    current = hasattr(batched, "batches")  # The older release has no batching.
    base = {"api_base": server.openai_base}
    # The older release ignores DEFAULT_PARAMETERS for embeddings: pass them.
    kwargs = {} if current else base

    # Warm-up without latency: clients, the event loop, LiteLLM's caches.
    with contextlib.suppress(Exception):  # Measured (and reported) below.
        await batched.aembed(inputs[:8], **kwargs)
    list(batched.embed(inputs[:8], **kwargs))

    server.set(latency=args.latency)

    async def sync_embed() -> list[list[float]]:
        return list(batched.embed(inputs, **kwargs))

    fast = {"aembed": lambda: batched.aembed(inputs, **kwargs)}
    if current:  # The older release has no matrix methods.
        fast["aembed_matrix"] = lambda: batched.aembed_matrix(inputs)
    fast["embed"] = sync_embed
    results: dict[str, Any] = await timed_rounds(server, fast, len(inputs))
    if current:
        results["per_input"] = await timed(
            server, lambda: per_input.aembed(subset), len(subset)
        )
    else:
        results["per_input"] = {
            "error": "no batch size or concurrency setting: embed() and aembed() "
            "send all inputs in one request"
        }

    async def raw_aembed() -> list[list[float]]:
        # The same batches and bound on concurrency, written by hand around
        # LiteLLM: what the package's batching costs on top of LiteLLM.
        import litellm

        semaphore = asyncio.Semaphore(args.concurrency)
        size = args.batch_size

        async def one(batch: list[str]) -> list[list[float]]:
            async with semaphore:
                response = await litellm.aembedding(
                    model=EMBEDDING_MODEL, input=batch, **base
                )
                return [item["embedding"] for item in response.data]

        batches = [inputs[i : i + size] for i in range(0, len(inputs), size)]
        results = await asyncio.gather(*(one(batch) for batch in batches))
        return [vector for batch in results for vector in batch]

    results["raw_aembed"] = await timed(server, raw_aembed, len(inputs))
    results["python_floats"] = python_floats_cost(len(inputs), args.dimensions)
    server.stop()
    return {
        "rows": results,
        "inputs": len(inputs),
        "per_input_inputs": len(subset),
        "batch_size": args.batch_size if current else None,
        "concurrency": args.concurrency if current else None,
        "latency": args.latency,
        "dimensions": args.dimensions,
    }


def python_floats_cost(count: int, dimensions: int) -> dict[str, Any]:
    """CPU per vector of turning float32 vectors into lists of Python floats
    (``ndarray.tolist()``, in batches of 100 as ``aembed()`` does) and
    freeing them again: what ``aembed()``'s documented return type costs
    whatever the decoding, measured alone."""
    import gc

    import numpy as np

    matrix = np.random.default_rng(0).standard_normal((count, dimensions))
    matrix = matrix.astype(np.float32)
    gc.collect()
    cpu = time.process_time()
    lists = [matrix[i : i + 100].tolist() for i in range(0, count, 100)]
    del lists
    cpu = time.process_time() - cpu
    return {"cpu_ms_per_vector": 1000 * cpu / count}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    return asyncio.run(embed_all(args))


# -- the table ---------------------------------------------------------------


def floor_seconds(
    inputs: int, batch_size: int, concurrency: int, latency: float
) -> float:
    """The floor as specified: ceil(N / batch) / concurrency x latency."""
    return -(-inputs // batch_size) / concurrency * latency


def bench_throughput(args: argparse.Namespace, old: OldEnvironment | None) -> Table:
    options = [
        "--inputs",
        str(args.inputs),
        "--per-input-cap",
        str(args.per_input_cap),
        "--batch-size",
        str(args.batch_size),
        "--concurrency",
        str(args.concurrency),
        "--latency",
        str(args.latency),
        "--dimensions",
        str(args.dimensions),
    ]
    progress(f"Embedding throughput: {args.inputs} inputs, {args.latency:.3f} s...")
    results = run_workers("throughput.py", options, old, "Embedding throughput")
    n, batch, concurrency = args.inputs, args.batch_size, args.concurrency
    floor = floor_seconds(n, batch, concurrency, args.latency)
    impls = columns(old)
    headers = [""]
    for impl in impls:
        headers += [
            f"{LABELS[impl]}: s",
            "x floor",
            "client CPU ms/vector",
            "requests",
            "max in flight",
        ]
    table = Table(
        f"Embedding throughput: {n:,} inputs x {args.dimensions:,} dimensions, "
        f"{args.latency * 1000:.0f} ms per request",
        headers,
    )
    rows = [
        (
            "aembed",
            f"(a) await aembed(), BATCH_SIZE {batch}, MAX_CONCURRENCY {concurrency}",
        ),
        (
            "aembed_matrix",
            "(a, matrix) await aembed_matrix(), same settings: one float32 array "
            "(what the indexes use)",
        ),
        (
            "raw_aembed",
            f"(a, raw) litellm.aembedding() (JSON floats), same batches, "
            f"{concurrency} at a time",
        ),
        (
            "per_input",
            f"(b) one request per input (BATCH_SIZE 1), "
            f"{args.per_input_cap} inputs x {n // max(1, args.per_input_cap)}",
        ),
        ("embed", "sync embed(), same settings"),
    ]
    for key, label in rows:
        cells = [label]
        for impl in impls:
            result = results.get(impl, {})
            if missing := unmeasured(old, impl, result, width=5):
                cells += missing
                continue
            if key not in result["rows"]:
                cells += ["n/a (no such method)", "", "", "", ""]
                continue
            row = result["rows"][key]
            if "seconds" not in row:
                cells += [failed(row), "", "", "", ""]
                continue
            seconds = row["seconds"] * n / row["inputs"]
            text = f"{seconds:.3f}"
            if row["inputs"] != n:
                text += " (extrapolated)"
            if "error" in row:
                text = f"{row['seconds']:.3f}, wrong: {row['error']}"
            cells += [
                text,
                ratio(seconds / floor) if "error" not in row else "—",
                f"{row['cpu_ms_per_vector']:.3f}" if "cpu_ms_per_vector" in row else "",
                str(row["requests"]),
                str(row["max_in_flight"]),
            ]
        table.rows.append(cells)
    table.rows.append(
        [
            f"(c) floor: ceil({n:,} / {batch}) / {concurrency} x "
            f"{args.latency * 1000:.0f} ms",
            f"{floor:.3f}",
            "1.000x",
            "",
            str(-(-n // batch)),
            str(concurrency),
        ]
        + ["", "", "", "", ""] * (len(impls) - 1)
    )
    table.notes.append(
        "x floor = time / floor (c). One request per input runs on the first "
        f"{args.per_input_cap} inputs; its time is scaled linearly to {n:,} "
        "(its requests are those actually sent). The provider server runs in "
        "a process of its own (as a real provider runs on another machine): "
        "client CPU is the benchmark process's CPU time per vector returned, "
        "decoding included. Rows (a), (a, matrix) and sync embed() run "
        f"{ROUNDS} times each, interleaved: their median round (CPU: the "
        "median of the rounds)."
    )
    floats = results.get(CURRENT, {}).get("rows", {}).get("python_floats")
    if floats:
        table.notes.append(
            "aembed() returns lists of Python floats (its documented type): "
            "making and freeing them alone costs "
            f"{floats['cpu_ms_per_vector']:.3f} ms of CPU per vector here "
            "(ndarray.tolist() of the decoded float32 vectors, measured in the "
            "same run); aembed_matrix() does not make them."
        )
    embed = results.get(OLD, {}).get("rows", {}).get("embed", {})
    if embed.get("requests") == 1 and n > 1:
        table.notes.append(
            f"{LABELS[OLD]} has no batching: embed() sends all {n:,} inputs in "
            "one request, which the loopback server accepts but real providers "
            "refuse (OpenAI takes at most 2,048 inputs per request)."
        )
    add_old_note(table, old)
    table.data = results
    return table


def targets(data: dict[str, Any]) -> list[list[str]]:
    result = data.get(CURRENT, {})
    rows = result.get("rows", {})
    aembed, embed = rows.get("aembed", {}), rows.get("embed", {})
    matrix = rows.get("aembed_matrix", {})
    if "seconds" not in aembed or "error" in aembed:
        return [target("throughput: batched aembed()", failed(aembed or result), False)]
    n, batch = result["inputs"], result["batch_size"]
    floor = floor_seconds(n, batch, result["concurrency"], result["latency"])
    found = [
        target(
            "throughput: batched aembed() within 1.5x of the floor",
            f"{aembed['seconds'] / floor:.2f}x ({aembed['seconds']:.3f} s vs "
            f"{floor:.3f} s), max in flight {aembed['max_in_flight']}",
            aembed["seconds"] <= 1.5 * floor,
        ),
    ]
    if "cpu_ms_per_vector" in matrix:
        found.append(
            target(
                "throughput: client CPU per vector at most 0.1 ms, decoding "
                "included (aembed_matrix: float32, as the indexes get them)",
                f"{matrix['cpu_ms_per_vector']:.3f} ms at "
                f"{result['dimensions']:,} dimensions",
                matrix["cpu_ms_per_vector"] <= 0.1,
            )
        )
    floats = rows.get("python_floats", {}).get("cpu_ms_per_vector")
    found.append(
        target(
            "throughput: client CPU per vector, aembed() (lists of Python "
            "floats): for information",
            f"{aembed['cpu_ms_per_vector']:.3f} ms, of which making the floats "
            + (f"{floats:.3f} ms" if floats is not None else "unmeasured"),
            None,
        )
    )
    if "seconds" in embed and "error" not in embed:
        serial = -(-n // batch) * result["latency"]
        found.append(
            target(
                "throughput: sync embed() within 1.5x of ceil(N / batch) x latency",
                f"{embed['seconds'] / serial:.2f}x ({embed['seconds']:.3f} s vs "
                f"{serial:.3f} s)",
                embed["seconds"] <= 1.5 * serial,
            )
        )
    return found


def add_measure_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--inputs", type=int, default=5000)
    parser.add_argument("--per-input-cap", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--dimensions", type=int, default=1536)


BENCHMARK = Benchmark(
    "throughput",
    add_options,
    settle,
    bench_throughput,
    targets,
    add_measure_options,
    measure,
)

if __name__ == "__main__":
    script(__doc__, BENCHMARK)
