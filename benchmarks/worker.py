"""One benchmark in one process, for ``run.py``; prints a ``BENCH_RESULT`` line.

    python benchmarks/worker.py overhead|throughput --impl current|old [options]

Run with the Python of the environment to measure: this checkout's (``current``)
or the venv holding the older release (``old``). The loopback provider comes
from ``tests/providers.py``, loaded by file path so that the repository root
(which holds this checkout's package) is not put on ``sys.path`` for ``old``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent
RESULT_PREFIX = "BENCH_RESULT "

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
# The loopback server ignores the key, but the OpenAI client wants one.
os.environ.setdefault("OPENAI_API_KEY", "bench-not-a-secret")

CHAT_BACKEND = "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMChatBackend"
EMBEDDING_BACKEND = (
    "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMEmbeddingBackend"
)
CHAT_MODEL = "openai/bench-chat"
EMBEDDING_MODEL = "openai/bench-embed"
MESSAGES = [
    {"role": "system", "content": "You answer questions about a Wagtail site."},
    {"role": "user", "content": "What does the vector index do?"},
]


def load_providers() -> Any:
    spec = importlib.util.spec_from_file_location(
        "bench_providers", REPOSITORY / "tests" / "providers.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_providers"] = module  # dataclasses look it up.
    spec.loader.exec_module(module)
    # The server writes headers and body in separate sends; with Nagle's
    # algorithm on, the body then waits for the client's delayed ACK (about
    # 40 ms on Linux) on every non-streaming reply, which would swamp what
    # is measured here. The standard library's switch turns it off.
    module._Handler.disable_nagle_algorithm = True
    return module


def package_info() -> dict[str, Any]:
    import importlib.metadata

    import wagtail_vector_index

    try:
        version = importlib.metadata.version("wagtail-vector-index")
    except importlib.metadata.PackageNotFoundError:
        version = getattr(wagtail_vector_index, "__version__", "?")
    return {
        "package_version": version,
        "package_path": str(Path(wagtail_vector_index.__file__).parent),
        "litellm_version": importlib.metadata.version("litellm"),
        "python": sys.version.split()[0],
    }


def error_text(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip().rstrip(":")
    return " ".join(text.split())[:300]


def where(error: BaseException) -> str:
    """The last frame of the package in the traceback, for the report."""
    frames = [
        f"{Path(frame.filename).name}:{frame.lineno}"
        for frame in traceback.extract_tb(error.__traceback__)
        if "wagtail_vector_index" in frame.filename
    ]
    return frames[-1] if frames else ""


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p10_ms": ordered[int(0.1 * (len(ordered) - 1))] * 1000,
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
        "count": len(ordered),
    }


# -- call overhead -----------------------------------------------------------


def interleaved(
    calls: dict[str, Any], *, count: int, warmup: int, budget: float
) -> dict[str, Any]:
    """Time each callable ``count`` times, interleaved (AB BA AB ...)."""
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    deadline = time.monotonic() + budget
    for round_number in range(count):
        order = names if round_number % 2 == 0 else names[::-1]
        for name in order:
            started = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - started)
        if time.monotonic() > deadline:
            break
    result: dict[str, Any] = {name: summary(values) for name, values in times.items()}
    first, second = names
    # Paired: each round's difference, robust to drift over the run.
    differences = [a - b for a, b in zip(times[first], times[second], strict=True)]
    result["median_difference_ms"] = statistics.median(differences) * 1000
    return result


def package_own_work(backend: Any, raw_parameters: dict) -> dict[str, Any]:
    """The package's own time per ``chat()``: LiteLLM's ``completion`` replaced
    by a function returning a reply it gave earlier (no HTTP, no LiteLLM)."""
    import litellm

    reply = litellm.completion(**raw_parameters)
    real = litellm.completion
    litellm.completion = lambda **kwargs: reply
    try:
        for _ in range(50):
            backend.chat(messages=MESSAGES)
        times = []
        deadline = time.monotonic() + 10
        for _ in range(2000):
            started = time.perf_counter()
            backend.chat(messages=MESSAGES)
            times.append(time.perf_counter() - started)
            if time.monotonic() > deadline:
                break
    finally:
        litellm.completion = real
    return summary(times)


def bench_overhead(args: argparse.Namespace) -> dict[str, Any]:
    import litellm

    from wagtail_vector_index.ai_utils.backends import get_chat_backend

    providers = load_providers()
    server = providers.ProviderServer().start()
    expected = server.state.reply
    backend = get_chat_backend(
        backend_dict={
            "CLASS": CHAT_BACKEND,
            "CONFIG": {
                "MODEL_ID": CHAT_MODEL,
                "TOKEN_LIMIT": 4096,
                "DEFAULT_PARAMETERS": {
                    "api_base": server.openai_base,
                    "max_retries": 0,
                },
            },
        },
        backend_id="default",
    )
    raw_parameters = {
        "model": CHAT_MODEL,
        "messages": MESSAGES,
        "api_base": server.openai_base,
        "max_retries": 0,
    }

    def package_chat() -> None:
        response = backend.chat(messages=MESSAGES)
        assert response.choices[0] == expected, response.choices

    def raw_chat() -> None:
        response = litellm.completion(**raw_parameters)
        assert response.choices[0].message.content == expected

    def package_stream() -> None:
        text = "".join(
            p["content"] for p in backend.chat(messages=MESSAGES, stream=True)
        )
        assert text == expected, text

    def raw_stream() -> None:
        text = "".join(
            chunk.choices[0].delta.content or ""
            for chunk in litellm.completion(**raw_parameters, stream=True)
            if chunk.choices
        )
        assert text == expected, text

    def raw_stream_usage() -> None:
        # What the package asks for where the model allows it (see notes).
        chunks = litellm.completion(
            **raw_parameters, stream=True, stream_options={"include_usage": True}
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == expected, text

    rows: dict[str, Any] = {"own": package_own_work(backend, raw_parameters)}
    for row, package_call, raw_call in (
        ("chat", package_chat, raw_chat),
        ("stream", package_stream, raw_stream),
        ("stream_usage", package_stream, raw_stream_usage),
    ):

        def last_body() -> dict:
            body = server.requests_to("/v1/chat/completions")[-1].body
            return body if isinstance(body, dict) else {}

        try:
            package_call()  # Fails fast, before any timing, if it cannot work.
        except Exception as error:  # Reported in the table.
            rows[row] = {"error": error_text(error), "where": where(error)}
            continue
        package_keys = set(last_body())
        raw_call()
        # What the package sends that the raw call does not.
        extra = sorted(package_keys - set(last_body()))
        result = interleaved(
            {"package": package_call, "raw": raw_call},
            count=args.calls,
            warmup=args.warmup,
            budget=args.budget,
        )
        result["extra_request_keys"] = extra
        rows[row] = result
    server.stop()
    return {"rows": rows, "calls": args.calls, "warmup": args.warmup}


# -- embedding throughput ----------------------------------------------------


def embedding_backend(server: Any, *, batch_size: int, concurrency: int) -> Any:
    from wagtail_vector_index.ai_utils.backends import get_embedding_backend

    return get_embedding_backend(
        backend_dict={
            "CLASS": EMBEDDING_BACKEND,
            "CONFIG": {
                "MODEL_ID": EMBEDDING_MODEL,
                "TOKEN_LIMIT": 8191,
                "EMBEDDING_OUTPUT_DIMENSIONS": server.state.dimensions,
                "BATCH_SIZE": batch_size,
                "MAX_CONCURRENCY": concurrency,
                "DEFAULT_PARAMETERS": {"api_base": server.openai_base},
            },
        },
        backend_id="default",
    )


def reset_counters(server: Any) -> None:
    with server.state.lock:
        server.state.requests.clear()
        server.state.max_in_flight = 0


async def measure(server: Any, call: Any, count: int) -> dict[str, Any]:
    reset_counters(server)
    started = time.perf_counter()
    try:
        vectors = await call()
    except Exception as error:  # Reported in the table.
        return {"error": error_text(error), "where": where(error)}
    seconds = time.perf_counter() - started
    vectors = list(vectors)
    result = {
        "seconds": seconds,
        "inputs": count,
        "vectors": len(vectors),
        "requests": len(server.requests_to("/v1/embeddings")),
        "max_in_flight": server.state.max_in_flight,
    }
    if len(vectors) != count:
        result["error"] = f"returned {len(vectors)} vectors for {count} inputs"
    return result


async def bench_throughput_async(args: argparse.Namespace) -> dict[str, Any]:
    providers = load_providers()
    server = providers.ProviderServer().start()
    inputs = [
        f"Short input {i}: a paragraph of a Wagtail page." for i in range(args.inputs)
    ]
    subset = inputs[: args.per_input_cap]
    batched = embedding_backend(
        server, batch_size=args.batch_size, concurrency=args.concurrency
    )
    per_input = embedding_backend(server, batch_size=1, concurrency=args.concurrency)
    current = hasattr(batched, "batches")  # The older release has no batching.
    base = {"api_base": server.openai_base}
    # The older release ignores DEFAULT_PARAMETERS for embeddings: pass them.
    kwargs = {} if current else base

    # Warm-up without latency: clients, the event loop, LiteLLM's caches.
    with contextlib.suppress(Exception):  # Measured (and reported) below.
        await batched.aembed(inputs[:8], **kwargs)
    list(batched.embed(inputs[:8], **kwargs))

    server.state.latency = args.latency
    results: dict[str, Any] = {}
    results["aembed"] = await measure(
        server, lambda: batched.aembed(inputs, **kwargs), len(inputs)
    )
    if current:
        results["per_input"] = await measure(
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

    results["raw_aembed"] = await measure(server, raw_aembed, len(inputs))

    async def sync_embed() -> list[list[float]]:
        return list(batched.embed(inputs, **kwargs))

    results["embed"] = await measure(server, sync_embed, len(inputs))
    server.stop()
    return {
        "rows": results,
        "inputs": len(inputs),
        "per_input_inputs": len(subset),
        "batch_size": args.batch_size if current else None,
        "concurrency": args.concurrency if current else None,
        "latency": args.latency,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("benchmark", choices=["overhead", "throughput"])
    parser.add_argument("--impl", choices=["current", "old"], required=True)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--inputs", type=int, default=5000)
    parser.add_argument("--per-input-cap", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    if args.impl == "current":
        # Works without the package installed; with it, this is the same code.
        sys.path.insert(0, str(REPOSITORY))
    try:
        info = package_info()
        checkout = Path(info["package_path"]) == REPOSITORY / "wagtail_vector_index"
        if checkout != (args.impl == "current"):
            raise RuntimeError(f"imported the wrong package: {info['package_path']}")
        if args.benchmark == "overhead":
            result = bench_overhead(args)
        else:
            result = asyncio.run(bench_throughput_async(args))
        result.update(info)
    except Exception as error:  # The whole column says why.
        result = {"error": error_text(error), "where": where(error)}
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
