"""Call overhead benchmark: ``backend.chat()`` against ``litellm.completion()``.

    python benchmarks/overhead.py [--quick] [--calls N] [--with-old] [--markdown]
                                  [--json FILE]

The package's chat backend and the raw LiteLLM call on the same loopback
server (``tests/providers.py``, 127.0.0.1), in one process, interleaved; plain
and streaming, plus the package's own work per call with LiteLLM stubbed out.
From the repository root, with the package installed in the running Python;
``run.py`` runs this with the other benchmarks.

The calls are timed in a child process, ``overhead.py measure --impl
current|old``, run with this Python or with the venv of wagtail-vector-index
0.10.0 (``--with-old``: ``benchmarks/.venv-old`` unless ``--old-venv``, created
on first use).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from bench_common import (
    CURRENT,
    LABELS,
    Benchmark,
    OldEnvironment,
    Table,
    add_old_note,
    columns,
    error_text,
    failed,
    load_providers,
    ms,
    progress,
    ratio,
    run_workers,
    script,
    signed_ms,
    summary,
    target,
    unmeasured,
    where,
)

CHAT_BACKEND = "wagtail_vector_index.ai_utils.backends.litellm.LiteLLMChatBackend"
CHAT_MODEL = "openai/bench-chat"
MESSAGES = [
    {"role": "system", "content": "You answer questions about a Wagtail site."},
    {"role": "user", "content": "What does the vector index do?"},
]


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, help="timed calls of each kind")


def settle(args: argparse.Namespace) -> None:
    args.calls = args.calls or (100 if args.quick else 300)
    args.warmup = 20 if args.quick else 50
    args.call_budget = 20.0 if args.quick else 60.0


# -- in the child process (this checkout's or the older release's Python) ----


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


def measure(args: argparse.Namespace) -> dict[str, Any]:
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


# -- the table ---------------------------------------------------------------


def bench_overhead(args: argparse.Namespace, old: OldEnvironment | None) -> Table:
    options = ["--calls", str(args.calls), "--warmup", str(args.warmup)]
    options += ["--budget", str(args.call_budget)]
    progress(f"Call overhead: {args.calls} interleaved calls of each kind...")
    results = run_workers("overhead.py", options, old, "Call overhead")
    impls = columns(old)
    headers = [""]
    for impl in impls:
        label = LABELS[impl]
        headers += [
            f"{label}: package ms",
            "raw LiteLLM ms",
            "ratio",
            "paired diff ms",
        ]
    table = Table(
        "Call overhead: backend.chat() against litellm.completion(), "
        "loopback server, median per call",
        headers,
    )
    rows = [
        ("chat", "chat()"),
        ("stream", "chat(stream=True), all parts read"),
        ("stream_usage", "chat(stream=True) vs raw with include_usage"),
    ]
    for key, label in rows:
        cells = [label]
        for impl in impls:
            result = results.get(impl, {})
            row = result.get("rows", {}).get(key) if "rows" in result else None
            if missing := unmeasured(old, impl, result):
                cells += missing
            elif row is None or "error" in row:
                cells += [failed(row or {"error": "not measured"}), "", "", ""]
            else:
                package, raw = row["package"]["median_ms"], row["raw"]["median_ms"]
                cells += [
                    ms(package, 3),
                    ms(raw, 3),
                    ratio(package / raw),
                    signed_ms(row["median_difference_ms"], 3),
                ]
        table.rows.append(cells)
    own = [
        "package's own work per chat() (LiteLLM stubbed)",
    ]
    for impl in impls:
        result = results.get(impl, {})
        missing = unmeasured(old, impl, result)
        own += missing or [ms(result["rows"]["own"]["median_ms"], 3), "", "", ""]
    table.rows.append(own)
    counts = {
        impl: result["rows"]["chat"]["package"]["count"]
        for impl, result in results.items()
        if "rows" in result and "package" in result["rows"].get("chat", {})
    }
    table.notes.append(
        f"{', '.join(f'{LABELS[i]}: {c}' for i, c in counts.items())} calls of "
        f"each (at most {args.calls}, {args.call_budget:.0f} s per row), "
        f"interleaved AB BA ..., after {args.warmup} warm-up calls of each; "
        "ratio = median package / median raw; paired diff = median of the "
        "per-round differences."
    )
    for impl, result in results.items():
        extra = result.get("rows", {}).get("stream", {}).get("extra_request_keys")
        if extra:
            table.notes.append(
                f"{LABELS[impl]}: the package's streaming request also sends "
                f"{', '.join(extra)} (usage in the last chunk, one more chunk)."
            )
    table.notes.append(
        "'vs raw with include_usage': the raw call also asks for "
        'stream_options={"include_usage": True}, as the package does where '
        "LiteLLM says the model supports it: the same request on both sides."
    )
    add_old_note(table, old)
    table.data = results
    return table


def targets(data: dict[str, Any]) -> list[list[str]]:
    rows = []
    result = data.get(CURRENT, {})
    # The streaming target compares the same request on both sides: the
    # package asks for usage in the stream (one more chunk, parsed), so
    # the plain raw stream is shown beside it, not held to the target.
    for key, label in (
        ("chat", "chat()"),
        ("stream_usage", "chat(stream=True), same request"),
        ("stream", "chat(stream=True), raw without include_usage"),
    ):
        row = result.get("rows", {}).get(key)
        if row and "package" in row:
            value = row["package"]["median_ms"] / row["raw"]["median_ms"]
            informational = key == "stream"
            goal = "for information" if informational else "at most 5% slower"
            rows.append(
                target(
                    f"call overhead, {label}: {goal}",
                    f"{(value - 1) * 100:+.1f}% ({value:.3f}x)",
                    None if informational else value <= 1.05,
                )
            )
        else:
            rows.append(target(f"call overhead, {label}", failed(row or result), False))
    return rows


def add_measure_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--budget", type=float, default=60.0)


BENCHMARK = Benchmark(
    "overhead",
    add_options,
    settle,
    bench_overhead,
    targets,
    add_measure_options,
    measure,
)

if __name__ == "__main__":
    script(__doc__, BENCHMARK)
