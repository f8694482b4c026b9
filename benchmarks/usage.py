"""Usage ledger benchmark: what recording and budget checks cost per call.

    python -m benchmarks.usage [--quick] [--usage-calls N] [--ledger-rows N]
                               [--markdown] [--json FILE]
    python benchmarks/usage.py ...            (the same)

From the repository root. In a child process (``usage.py measure``), with the
test project's settings on a new SQLite file:

1. ``backend.chat()`` on the loopback server (``tests/providers.py``,
   127.0.0.1) with the usage ledger on (one ``AIUsageRecord`` row and the
   month's ``AIUsageTotal`` row per call, written by the ledger's thread) and
   off (``USAGE["ENABLED"] = False``), interleaved in one run, in blocks
   timed until their rows are written; the ratio is the overhead of
   recording.
   A third row adds a budget for calls without a site (a check and a
   reservation before each call).
2. The budget check alone (``UsageCall.start()``) with the ledger empty and
   with ``--ledger-rows`` (default
   1,000,000) rows in it: budgets read ``AIUsageTotal``, never the ledger.

``run.py`` runs this with the other benchmarks (``--only usage``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# ``python -m benchmarks.usage`` from the repository root: the helpers beside
# this file are imported as the other scripts import them.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_common import (  # noqa: E402
    CURRENT,
    Benchmark,
    OldEnvironment,
    Table,
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
)

CHAT_MODEL = "openai/bench-chat"
MESSAGES = [
    {"role": "system", "content": "You answer questions about a Wagtail site."},
    {"role": "user", "content": "What does the vector index do?"},
]


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--usage-calls", type=int, help="usage ledger: timed calls of each kind"
    )
    parser.add_argument(
        "--ledger-rows", type=int, help="ledger rows for the budget check (1,000,000)"
    )


def settle(args: argparse.Namespace) -> None:
    # Whole blocks, each order of the three modes twice (twelve rounds).
    args.usage_calls = args.usage_calls or (600 if args.quick else 1200)
    args.ledger_rows = args.ledger_rows or (200_000 if args.quick else 1_000_000)
    args.usage_warmup = 20 if args.quick else 50


# -- in the child process -------------------------------------------------------


def setup_django() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = str(
        Path(tempfile.mkdtemp()) / "usage-bench.sqlite3"
    )
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def use_settings(server: Any, usage: dict[str, Any]) -> None:
    """``WAGTAIL_VECTOR_INDEX`` for the next calls (outside the timings)."""
    from django.conf import settings
    from django.core.signals import setting_changed

    settings.WAGTAIL_VECTOR_INDEX = {
        "CHAT_BACKENDS": {
            "default": {
                "CLASS": "wagtail_vector_index.ai_utils.backends.litellm."
                "LiteLLMChatBackend",
                "CONFIG": {
                    "MODEL_ID": CHAT_MODEL,
                    "TOKEN_LIMIT": 4096,
                    "DEFAULT_PARAMETERS": {
                        "api_base": server.openai_base,
                        "max_retries": 0,
                    },
                },
            }
        },
        "USAGE": usage,
    }
    setting_changed.send(
        sender=None,
        setting="WAGTAIL_VECTOR_INDEX",
        value=settings.WAGTAIL_VECTOR_INDEX,
        enter=True,
    )


MODES = {
    "off": {"ENABLED": False},
    "on": {},
    # A budget no call reaches: checked and reserved before every call.
    "budget": {"NO_SITE_MONTHLY_BUDGET_TOKENS": 10**12},
}


#: Calls per timed block: a block ends when the writer thread has written
#: its rows, so that the background writes count against the mode that
#: caused them.
BLOCK = 100


def time_calls(server: Any, count: int, warmup: int) -> dict[str, Any]:
    """``chat()`` in each mode: blocks of :data:`BLOCK` calls, each timed up
    to the last row written, the modes' order turning through every
    permutation (so that no mode always follows another)."""
    from wagtail_vector_index import ai, usage

    expected = server.state.reply
    names = list(MODES)
    orders = list(itertools.permutations(names))
    times: dict[str, list[float]] = {name: [] for name in names}

    def call() -> None:
        response = ai.get_chat_backend().chat(messages=MESSAGES)
        assert response.text == expected, response.text

    for name in names:
        use_settings(server, MODES[name])
        for _ in range(warmup):
            call()
    usage.flush()
    for round_number in range(max(count // BLOCK, 1)):
        for name in orders[round_number % len(orders)]:
            use_settings(server, MODES[name])
            started = time.perf_counter()
            for _ in range(BLOCK):
                call()
            usage.flush()
            times[name].append((time.perf_counter() - started) / BLOCK)
    result: dict[str, Any] = {name: summary(values) for name, values in times.items()}
    for name in ("on", "budget"):
        differences = [a - b for a, b in zip(times[name], times["off"], strict=True)]
        result[f"{name}_difference_ms"] = statistics.median(differences) * 1000
    return result


def fill_ledger(rows: int) -> float:
    """``rows`` ledger rows over the last year, inserted in bulk (seconds)."""
    from django.db import connection, transaction

    from wagtail_vector_index.models import AIUsageRecord

    table = AIUsageRecord._meta.db_table
    columns = (
        "created_at, kind, alias, model_id, feature, prompt_tokens, "
        "completion_tokens, cost, streamed, stopped_early, input_count, attempt, "
        "outcome, error_message, prompt, response"
    )
    started = time.perf_counter()
    now = time.time()
    batch = 50_000
    with transaction.atomic(), connection.cursor() as cursor:
        for first in range(0, rows, batch):
            values = [
                (
                    time.strftime(
                        "%Y-%m-%d %H:%M:%S", time.gmtime(now - (n % 31_536_000))
                    ),
                    "chat",
                    "default",
                    CHAT_MODEL,
                    "bench",
                    20,
                    30,
                    "0.00010000",
                    False,
                    False,
                    2,
                    1,
                    "success",
                    "",
                    "",
                    "",
                )
                for n in range(first, min(first + batch, rows))
            ]
            placeholders = ", ".join(["%s"] * 16)
            # Our own table and column names; the values are parameters.
            sql = f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"  # noqa: S608
            cursor.executemany(sql, values)
    return time.perf_counter() - started


def time_budget_checks(count: int, warmup: int = 20) -> dict[str, Any]:
    """``UsageCall.start()`` under a budget: what a budgeted call adds before
    its request (its reservation's release, done by the writer thread after
    the call, is not timed)."""
    from wagtail_vector_index import ai, usage

    backend = ai.get_chat_backend()
    times = []
    for number in range(count + warmup):
        call = usage.begin(
            backend,
            "chat",
            input_count=2,
            estimate=lambda: (50, None),
        )
        started = time.perf_counter()
        call.start()
        elapsed = time.perf_counter() - started
        # Released by the writer thread after the call, not before it.
        call._release()
        if number >= warmup:
            times.append(elapsed)
    return summary(times)


def check_queries() -> list[str]:
    """The SQL of one budget check and release, on the calling thread's
    connection and on the check's own: the tables it reads."""
    import contextlib

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from wagtail_vector_index import usage

    seen: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        seen.append(sql)
        return execute(sql, params, many, context)

    original = usage.own_connection

    @contextlib.contextmanager
    def capturing(alias: str, **kwargs: Any) -> Any:
        with original(alias, **kwargs) as own, own.execute_wrapper(record):
            yield own

    usage.own_connection = capturing
    try:
        with CaptureQueriesContext(connection) as queries:
            time_budget_checks(1, warmup=0)
    finally:
        usage.own_connection = original
    return seen + [query["sql"] for query in queries.captured_queries]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    setup_django()
    from wagtail_vector_index.models import AIUsageRecord

    providers = load_providers()
    server = providers.ProviderServer().start()
    try:
        calls = time_calls(server, args.calls, args.warmup)
        use_settings(server, MODES["budget"])
        from wagtail_vector_index import usage

        usage.flush()
        checks_small = time_budget_checks(args.checks)
        fill_seconds = fill_ledger(args.rows)
        rows = AIUsageRecord.objects.count()
        checks_large = time_budget_checks(args.checks)
        queries = check_queries()
    finally:
        server.stop()
    return {
        "calls": calls,
        "count": args.calls,
        "checks_small": checks_small,
        "checks_large": checks_large,
        "ledger_rows": rows,
        "fill_seconds": fill_seconds,
        "check_queries": queries,
    }


# -- the table ------------------------------------------------------------------


def bench_usage(args: argparse.Namespace, old: OldEnvironment | None) -> Table:
    options = ["--calls", str(args.usage_calls), "--warmup", str(args.usage_warmup)]
    options += ["--rows", str(args.ledger_rows), "--checks", str(500)]
    progress(
        f"Usage ledger: {args.usage_calls} interleaved calls of each kind, then "
        f"{args.ledger_rows:,} ledger rows..."
    )
    # 0.10.0 has no ledger: this checkout only.
    results = run_workers("usage.py", options, None, "Usage ledger")
    result = results.get(CURRENT, {})
    table = Table(
        "Usage ledger: chat() on the loopback server with recording off and on "
        f"(SQLite file), median per call of blocks of {BLOCK}",
        ["", "median ms", "ratio to off", "paired diff ms"],
    )
    if "calls" not in result:
        table.rows.append(["chat()", failed(result), "", ""])
        table.data = results
        return table
    calls = result["calls"]
    off = calls["off"]["median_ms"]
    table.rows.append(["chat(), recording off", ms(off, 3), "", ""])
    for key, label in (
        ("on", "chat(), recording on"),
        ("budget", "chat(), recording on + budget check"),
    ):
        value = calls[key]["median_ms"]
        table.rows.append(
            [
                label,
                ms(value, 3),
                ratio(value / off),
                signed_ms(calls[f"{key}_difference_ms"], 3),
            ]
        )
    table.rows.append(
        [
            "budget check alone, empty ledger",
            ms(result["checks_small"]["median_ms"], 3),
            "",
            "",
        ]
    )
    table.rows.append(
        [
            f"budget check alone, {result['ledger_rows']:,} ledger rows",
            ms(result["checks_large"]["median_ms"], 3),
            "",
            "",
        ]
    )
    table.notes.append(
        f"{result['count']} calls of each kind in blocks of {BLOCK}, each block "
        "timed until the writer thread has written its rows, the modes' order "
        "turning through every permutation; ratio = median / median with "
        "recording off; paired diff = median of the per-round differences. "
        "Budget check: "
        "UsageCall.start() in autocommit (in one transaction: the "
        "AIUsageTotal row locked, what is spent and reserved counted, an "
        "AIBudgetReservation row inserted, committed), 500 times. "
        f"{result['ledger_rows']:,} ledger rows inserted in "
        f"{result['fill_seconds']:.1f} s."
    )
    queries = result.get("check_queries", [])
    ledger = "wagtail_vector_index_aiusagerecord"
    table.notes.append(
        f"One budget check and release: {len(queries)} queries, "
        f"{sum(ledger in q for q in queries)} of them on the ledger table "
        "(AIUsageTotal and AIBudgetReservation only)."
    )
    table.data = results
    return table


def targets(data: dict[str, Any]) -> list[list[str]]:
    result = data.get(CURRENT, {})
    if "calls" not in result:
        return [target("usage ledger overhead", failed(result), False)]
    calls = result["calls"]
    value = calls["on"]["median_ms"] / calls["off"]["median_ms"]
    return [
        target(
            "usage ledger, chat() recording on vs off: at most 5% slower",
            f"{(value - 1) * 100:+.1f}% ({value:.3f}x)",
            value <= 1.05,
        ),
        target(
            "budget check with the ledger full: independent of its size",
            f"{result['checks_large']['median_ms']:.3f} ms vs "
            f"{result['checks_small']['median_ms']:.3f} ms empty",
            result["checks_large"]["median_ms"]
            <= 2 * result["checks_small"]["median_ms"],
        ),
    ]


def add_measure_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--calls", type=int, default=1200)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--checks", type=int, default=500)


BENCHMARK = Benchmark(
    "usage",
    add_options,
    settle,
    bench_usage,
    targets,
    add_measure_options,
    measure,
)

if __name__ == "__main__":
    script(__doc__, BENCHMARK)
