"""Start-up benchmark: ``django.setup()`` with and without the app.

    python benchmarks/startup.py [--quick] [--runs N] [--with-old] [--markdown]
                                 [--json FILE]

``django.setup()`` of the test project in new processes, with the app and the
test app (``tests.settings``), with the app only (``bench_settings.py``) and
without the app (``WVI_WITHOUT_APP=1``), alternating. From the repository root,
with the package installed in the running Python; ``run.py`` runs this with
the other benchmarks.

``--with-old`` adds a column for wagtail-vector-index 0.10.0 from PyPI, in a
venv of its own (``benchmarks/.venv-old`` unless ``--old-venv``), created on
first use.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench_common import (
    BENCHMARKS,
    CURRENT,
    LABELS,
    OLD,
    REPOSITORY,
    RESULT_PREFIX,
    Benchmark,
    OldEnvironment,
    Table,
    add_old_note,
    child_environment,
    columns,
    last_lines,
    ms,
    old_cell,
    parse_result,
    progress,
    script,
    target,
    yes_no,
)

#: Runs in each new process.
STARTUP_CODE = """
import sys, time
sys.path.append({benchmarks!r})  # For bench_settings.
started, cpu = time.perf_counter(), time.process_time()
import django
django.setup()
elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
import json
package = sys.modules.get("wagtail_vector_index")
print({prefix!r} + json.dumps({{
    "seconds": elapsed,
    "cpu": cpu,
    "litellm": "litellm" in sys.modules,
    "numpy": "numpy" in sys.modules,
    "modules": len(sys.modules),
    "package": getattr(package, "__file__", None),
}}))
"""


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, help="start-up runs of each project")


def settle(args: argparse.Namespace) -> None:
    args.runs = args.runs or (5 if args.quick else 15)
    args.startup_budget = 60.0 if args.quick else 150.0


@dataclass
class Variant:
    impl: str
    name: str
    python: Path
    cwd: Path
    env: dict[str, str]
    samples: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def run_startup_once(variant: Variant) -> None:
    code = STARTUP_CODE.format(benchmarks=str(BENCHMARKS), prefix=RESULT_PREFIX)
    started = time.perf_counter()
    try:
        result = subprocess.run(
            [str(variant.python), "-c", code],
            cwd=variant.cwd,
            env=child_environment(**variant.env),
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        variant.error = "django.setup() took more than 60 s"
        return
    wall = time.perf_counter() - started
    sample = parse_result(result.stdout)
    if result.returncode or sample is None:
        variant.error = last_lines(result.stderr, 1) or f"exit {result.returncode}"
        return
    sample["wall"] = wall
    variant.samples.append(sample)


def bench_startup(args: argparse.Namespace, old: OldEnvironment | None) -> Table:
    current = Path(sys.executable)
    variants = [
        Variant(
            CURRENT,
            "without",
            current,
            REPOSITORY,
            {"DJANGO_SETTINGS_MODULE": "tests.settings", "WVI_WITHOUT_APP": "1"},
        ),
        Variant(
            CURRENT,
            "with",
            current,
            REPOSITORY,
            {"DJANGO_SETTINGS_MODULE": "tests.settings"},
        ),
        Variant(
            CURRENT,
            "app only",
            current,
            REPOSITORY,
            {"DJANGO_SETTINGS_MODULE": "bench_settings"},
        ),
    ]
    if old and old.python:
        # Not from the repository root, whose package would shadow the old one.
        variants += [
            Variant(
                OLD,
                "without",
                old.python,
                BENCHMARKS,
                {"DJANGO_SETTINGS_MODULE": "bench_settings", "WVI_WITHOUT_APP": "1"},
            ),
            Variant(
                OLD,
                "app only",
                old.python,
                BENCHMARKS,
                {"DJANGO_SETTINGS_MODULE": "bench_settings"},
            ),
        ]
    progress(f"Start-up: {args.runs} runs of each of {len(variants)} projects...")
    for variant in variants:  # Warm the file system cache; not counted.
        run_startup_once(variant)
        variant.samples.clear()
    deadline = time.monotonic() + args.startup_budget
    rounds = 0
    for rounds in range(1, args.runs + 1):
        # Alternating, and rotated so no project always runs first.
        shift = rounds % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            if variant.error is None:
                run_startup_once(variant)
        if time.monotonic() > deadline:
            break

    def find(impl: str, name: str) -> Variant | None:
        return next((v for v in variants if v.impl == impl and v.name == name), None)

    def median(variant: Variant | None, key: str = "seconds") -> float | None:
        if variant is None or variant.error or not variant.samples:
            return None
        return statistics.median(s[key] for s in variant.samples) * 1000

    def cell(variant: Variant | None, key: str = "seconds") -> str:
        if variant is not None and variant.error:
            return f"error: {variant.error}"
        return ms(median(variant, key))

    def added(impl: str, name: str, key: str = "seconds") -> str:
        base = median(find(impl, "without"), key)
        other = median(find(impl, name), key)
        if base is None or other is None:
            return "—"
        return f"{other - base:+.1f} ms ({other / base:.3f}x)"

    def flag(impl: str, key: str) -> str:
        variant = find(impl, "with" if impl == CURRENT else "app only")
        if variant is None or not variant.samples:
            return "—"
        return yes_no(any(s[key] for s in variant.samples))

    def modules(impl: str, name: str) -> str:
        variant = find(impl, name)
        if variant is None or not variant.samples:
            return "—"
        return str(variant.samples[-1]["modules"])

    old_note = old_cell(old)
    impls = columns(old)
    table = Table(
        f"Start-up: django.setup() in a new process, median of {rounds} runs (ms)",
        ["", *(LABELS[i] for i in impls)],
    )

    def row(label: str, *cells: str) -> None:
        table.rows.append([label, *cells])

    def per_impl(function: Any, *arguments: Any) -> list[str]:
        return [
            old_note if impl == OLD and old_note else function(impl, *arguments)
            for impl in impls
        ]

    def only_current(text: str) -> list[str]:
        return [text] + [old_note or "n/a" for _ in impls[1:]]

    row(
        "without the app (WVI_WITHOUT_APP=1)",
        *per_impl(lambda i: cell(find(i, "without"))),
    )
    row(
        "with the app and the test app (tests.settings)",
        *only_current(cell(find(CURRENT, "with"))),
    )
    row("with the app only", *per_impl(lambda i: cell(find(i, "app only"))))
    row("app adds (tests.settings)", *only_current(added(CURRENT, "with")))
    row("app adds (app only)", *per_impl(added, "app only"))
    row(
        "app adds, CPU time (tests.settings)",
        *only_current(added(CURRENT, "with", "cpu")),
    )
    row("app adds, CPU time (app only)", *per_impl(added, "app only", "cpu"))
    row(
        "whole process, with the app only",
        *per_impl(lambda i: cell(find(i, "app only"), "wall")),
    )
    row(
        "whole process, without the app",
        *per_impl(lambda i: cell(find(i, "without"), "wall")),
    )
    # With the app: tests.settings here, the app only for the older release.
    row("litellm in sys.modules after setup", *per_impl(flag, "litellm"))
    row("numpy in sys.modules after setup", *per_impl(flag, "numpy"))
    row(
        "modules after setup (app only / without)",
        *per_impl(
            lambda i: f"{modules(i, 'app only')} / {modules(i, 'without')}",
        ),
    )
    table.notes.append(
        "Time from `import django` to the end of `django.setup()`, measured "
        "inside each process; 'whole process' is the wall time of the process "
        "(interpreter start included), measured by this script; 'CPU time' "
        "is the process's CPU time over the same span (less sensitive to other "
        "load on the machine)."
    )
    table.notes.append(
        "'app only' is tests/settings.py without tests.testapp "
        "(benchmarks/bench_settings.py): the older release cannot load the "
        "test app."
    )
    add_old_note(table, old)
    table.data = {
        f"{v.impl}/{v.name}": {
            "median_ms": median(v),
            "wall_median_ms": median(v, "wall"),
            "cpu_median_ms": median(v, "cpu"),
            "runs": len(v.samples),
            "error": v.error,
            "litellm": any(s["litellm"] for s in v.samples),
        }
        for v in variants
    }
    return table


def targets(data: dict[str, Any]) -> list[list[str]]:
    rows = []
    base = data[f"{CURRENT}/without"]["median_ms"]
    with_app = data[f"{CURRENT}/with"]["median_ms"]
    if base is not None and with_app is not None:
        rows.append(
            target(
                "start-up: the app adds at most 50 ms (median)",
                f"{with_app - base:+.1f} ms",
                with_app - base <= 50,
            )
        )
    rows.append(
        target(
            "start-up: litellm not imported by django.setup()",
            "imported" if data[f"{CURRENT}/with"]["litellm"] else "not imported",
            not data[f"{CURRENT}/with"]["litellm"],
        )
    )
    return rows


BENCHMARK = Benchmark("startup", add_options, settle, bench_startup, targets)

if __name__ == "__main__":
    script(__doc__, BENCHMARK)
