"""Benchmarks of the app: start-up, call overhead, embedding throughput.

    python benchmarks/run.py [--quick] [--only startup,overhead,throughput]
                             [--with-old] [--markdown] [--json FILE]

From the repository root, with the package installed in the running Python
(``make bench``). Every provider call goes to the loopback server of
``tests/providers.py`` on 127.0.0.1; every loop is bounded in count and time.

1. Start-up: ``django.setup()`` of the test project in new processes, with and
   without the app (``WVI_WITHOUT_APP=1``), alternating.
2. Call overhead: ``backend.chat()`` against ``litellm.completion()`` on the
   same server in one process, interleaved; plain and streaming.
3. Embedding throughput: 5,000 inputs, the server answering each request after
   50 ms: batched ``aembed``, one request per input, the floor, sync ``embed``.

``--with-old`` adds a column for wagtail-vector-index 0.10.0 from PyPI, in a
venv of its own (``benchmarks/.venv-old`` unless ``--old-venv``), created on
first use. Figures go to ``docs/benchmarks.md`` by hand (``--markdown``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent
WORKER = BENCHMARKS / "worker.py"
RESULT_PREFIX = "BENCH_RESULT "

OLD_PACKAGE = "wagtail-vector-index==0.10.0"
#: What 0.10.0 declares (``litellm>=1.40.15,<1.40.16``).
OLD_DECLARED_LITELLM = "litellm==1.40.15"
#: LiteLLM releases withdrawn as malicious: never installed.
WITHDRAWN_LITELLM = {"1.82.7", "1.82.8"}
DEFAULT_LITELLM = "1.106.2"

CURRENT = "current"
OLD = "old"
LABELS = {CURRENT: "this checkout", OLD: "0.10.0 (PyPI)"}

#: Runs in each new process of the start-up benchmark.
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


def child_environment(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"WVI_WITHOUT_APP", "DJANGO_SETTINGS_MODULE", "PYTHONPATH"}
    }
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env.update(extra)
    return env


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:])[:400]


def parse_result(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    return None


# -- tables ------------------------------------------------------------------


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The raw results behind the table (for the targets and --json).
    data: Any = None

    def text(self) -> str:
        widths = [
            max(len(str(row[i])) for row in [self.headers, *self.rows])
            for i in range(len(self.headers))
        ]

        def line(cells: list[str]) -> str:
            first, *rest = cells
            return "  ".join(
                [str(first).ljust(widths[0])]
                + [
                    str(cell).rjust(width)
                    for cell, width in zip(rest, widths[1:], strict=True)
                ]
            )

        out = [self.title, "=" * len(self.title), line(self.headers)]
        out.append("  ".join("-" * width for width in widths))
        out += [line(row) for row in self.rows]
        out += [f"  * {note}" for note in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        def line(cells: list[str]) -> str:
            return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

        out = [f"### {self.title}", "", line(self.headers)]
        out.append("|" + "|".join([" --- "] + [" ---: "] * (len(self.headers) - 1)))
        out[-1] += "|"
        out += [line(row) for row in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {note}" for note in self.notes]
        return "\n".join(out)


def ms(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}x"


def signed_ms(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:+,.{digits}f}"


def yes_no(value: bool | None) -> str:
    return "—" if value is None else ("yes" if value else "no")


# -- the older release's venv ------------------------------------------------


@dataclass
class OldEnvironment:
    python: Path | None
    reason: str  # Why there is no column, or how it was installed.
    details: dict[str, Any] = field(default_factory=dict)


def current_pins() -> dict[str, str]:
    """Every distribution of the running environment, by normalised name."""
    pins = {}
    for dist in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()
        if name and name != "wagtail-vector-index":
            pins[name] = dist.version
    return pins


def pip(python: Path, args: list[str], log: Path, timeout: float) -> tuple[int, str]:
    command = [str(python), "-m", "pip", "--disable-pip-version-check", *args]
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=BENCHMARKS,
            env=child_environment(),
        )
    except subprocess.TimeoutExpired:
        return 1, f"pip did not finish within {timeout:.0f} s"
    output = result.stdout + result.stderr
    # Mirrors of the registry that are not configured here: noise.
    output = "\n".join(
        line for line in output.splitlines() if "is ignored: it is neither" not in line
    )
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(command)}\n{output}\n(exit {result.returncode})\n")
    return result.returncode, output


def pip_error(output: str) -> str:
    """The lines of a pip failure that say why."""
    keep = [
        line.strip()
        for line in output.splitlines()
        if (line.startswith("ERROR") or "depends on" in line)
        and "for help visit" not in line
    ]
    text = " / ".join(keep) or last_lines(output)
    # pip lists every version it knows: keep the error readable.
    return re.sub(r"\(from versions: [^)]*\)", "(from versions: …)", text)[:500]


def prepare_old(path: Path) -> OldEnvironment:
    """Create (once) a venv with wagtail-vector-index 0.10.0 from PyPI."""
    python = path / "bin" / "python"
    marker = path / "ready.json"
    if marker.exists() and python.exists():
        details = json.loads(marker.read_text())
        return OldEnvironment(python, details["how"], details)
    pins = current_pins()
    litellm = pins.get("litellm", DEFAULT_LITELLM)
    if litellm in WITHDRAWN_LITELLM:
        return OldEnvironment(None, f"refused: LiteLLM {litellm} was withdrawn")
    progress(f"Creating {path} for {OLD_PACKAGE} (about 30 s the first time)...")
    path.mkdir(parents=True, exist_ok=True)
    log = path / "install.log"
    log.write_text("")
    created = subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if created.returncode:
        return OldEnvironment(None, f"venv failed: {last_lines(created.stderr)}")
    log.write_text("")
    # Everything pinned to what this environment runs, so pip never walks
    # through releases (of LiteLLM in particular).
    constraints = path / "constraints.txt"
    constraints.write_text(
        "".join(f"{name}=={version}\n" for name, version in sorted(pins.items()))
    )
    details: dict[str, Any] = {"litellm": litellm}

    # 1. As declared, with LiteLLM pinned to this environment's release.
    code, output = pip(
        python,
        ["install", "-c", str(constraints), OLD_PACKAGE, f"litellm=={litellm}"],
        log,
        timeout=600,
    )
    if code == 0:
        details["how"] = f"pip install {OLD_PACKAGE} litellm=={litellm}"
    else:
        details["declared_install"] = pip_error(output)
        # Is the release it asks for available at all? (One look-up.)
        _, probe = pip(
            python,
            ["install", "--dry-run", "--no-deps", OLD_DECLARED_LITELLM],
            log,
            timeout=120,
        )
        details["declared_litellm"] = (
            pip_error(probe) if "ERROR" in probe else "available"
        )
        # 2. Its dependencies pinned as here, then the package without its
        #    LiteLLM pin (numpy for its default storage, which setup imports).
        requirements = [f"litellm=={litellm}", "Django", "wagtail", "openai", "numpy"]
        code, output = pip(
            python,
            ["install", "-c", str(constraints), *requirements],
            log,
            timeout=900,
        )
        if code:
            return OldEnvironment(
                None, f"dependencies failed to install: {pip_error(output)}", details
            )
        code, output = pip(python, ["install", "--no-deps", OLD_PACKAGE], log, 300)
        if code:
            return OldEnvironment(
                None, f"{OLD_PACKAGE} failed to install: {pip_error(output)}", details
            )
        details["how"] = (
            f"pip install --no-deps {OLD_PACKAGE} over litellm=={litellm}, "
            "Django, Wagtail, openai, numpy pinned as in this environment"
        )
    check = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, json; print(json.dumps({d: "
            "m.version(d) for d in ('wagtail-vector-index', 'litellm', 'Django', "
            "'wagtail')}))",
        ],
        capture_output=True,
        text=True,
        cwd=BENCHMARKS,
        env=child_environment(),
        timeout=60,
    )
    if check.returncode:
        return OldEnvironment(None, f"import failed: {last_lines(check.stderr)}")
    details["versions"] = json.loads(check.stdout)
    marker.write_text(json.dumps(details, indent=2))
    return OldEnvironment(python, details["how"], details)


# -- 1. start-up -------------------------------------------------------------


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


# -- workers (2 and 3) -------------------------------------------------------


def run_worker(python: Path, impl: str, benchmark: str, options: list[str]) -> dict:
    try:
        result = subprocess.run(
            [str(python), str(WORKER), benchmark, "--impl", impl, *options],
            cwd=BENCHMARKS,  # Not the repository root (see worker.py).
            env=child_environment(),
            capture_output=True,
            text=True,
            timeout=600,
        )
    except subprocess.TimeoutExpired:
        return {"error": "did not finish within 600 s"}
    parsed = parse_result(result.stdout)
    if parsed is None:
        return {"error": last_lines(result.stderr) or f"exit {result.returncode}"}
    return parsed


def columns(old: OldEnvironment | None) -> list[str]:
    """The implementations shown: the older release only with --with-old."""
    return [CURRENT] if old is None else [CURRENT, OLD]


def old_cell(old: OldEnvironment | None) -> str | None:
    """The text of the older release's cells when it could not be measured."""
    if old is not None and old.python is None:
        return "not measured (see below)"
    return None


def add_old_note(table: Table, old: OldEnvironment | None) -> None:
    if old is None:
        table.notes.append(f"{LABELS[OLD]}: not requested (run with --with-old).")
    elif old.python is None:
        table.notes.append(f"{LABELS[OLD]}: not measured: {old.reason}")


def failed(result: dict[str, Any]) -> str:
    where = f" ({result['where']})" if result.get("where") else ""
    return f"fails: {result['error']}{where}"


def bench_overhead(args: argparse.Namespace, old: OldEnvironment | None) -> Table:
    options = ["--calls", str(args.calls), "--warmup", str(args.warmup)]
    options += ["--budget", str(args.call_budget)]
    results = {}
    progress(f"Call overhead: {args.calls} interleaved calls of each kind...")
    results[CURRENT] = run_worker(Path(sys.executable), CURRENT, "overhead", options)
    if old and old.python:
        progress("Call overhead, 0.10.0...")
        results[OLD] = run_worker(old.python, OLD, "overhead", options)
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
            note = old_cell(old) if impl == OLD else None
            result = results.get(impl, {})
            row = result.get("rows", {}).get(key) if "rows" in result else None
            if note:
                cells += [note, "", "", ""]
            elif "error" in result:
                cells += [failed(result), "", "", ""]
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
        note = old_cell(old) if impl == OLD else None
        result = results.get(impl, {})
        if note:
            own += [note, "", "", ""]
        elif "error" in result:
            own += [failed(result), "", "", ""]
        else:
            own += [ms(result["rows"]["own"]["median_ms"], 3), "", "", ""]
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
    ]
    results = {}
    progress(f"Embedding throughput: {args.inputs} inputs, {args.latency:.3f} s...")
    results[CURRENT] = run_worker(Path(sys.executable), CURRENT, "throughput", options)
    if old and old.python:
        progress("Embedding throughput, 0.10.0...")
        results[OLD] = run_worker(old.python, OLD, "throughput", options)
    n, batch, concurrency = args.inputs, args.batch_size, args.concurrency
    # The floor as specified: ceil(N / batch) / concurrency x latency.
    floor = -(-n // batch) / concurrency * args.latency
    impls = columns(old)
    headers = [""]
    for impl in impls:
        headers += [f"{LABELS[impl]}: s", "x floor", "requests", "max in flight"]
    table = Table(
        f"Embedding throughput: {n:,} inputs, {args.latency * 1000:.0f} ms per request",
        headers,
    )
    rows = [
        (
            "aembed",
            f"(a) await aembed(), BATCH_SIZE {batch}, MAX_CONCURRENCY {concurrency}",
        ),
        (
            "raw_aembed",
            f"(a, raw) litellm.aembedding(), same batches, {concurrency} at a time",
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
            note = old_cell(old) if impl == OLD else None
            result = results.get(impl, {})
            if note:
                cells += [note, "", "", ""]
                continue
            if "error" in result:
                cells += [failed(result), "", "", ""]
                continue
            row = result["rows"].get(key, {})
            if "seconds" not in row:
                cells += [failed(row), "", "", ""]
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
            str(-(-n // batch)),
            str(concurrency),
        ]
        + ["", "", "", ""] * (len(impls) - 1)
    )
    table.notes.append(
        "x floor = time / floor (c). One request per input runs on the first "
        f"{args.per_input_cap} inputs; its time is scaled linearly to {n:,} "
        "(its requests are those actually sent). The provider server runs in "
        "the same process (threads), so its JSON work shares the GIL with the "
        "client's."
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


# -- targets and the report --------------------------------------------------


def targets(tables: dict[str, Table]) -> Table:
    table = Table("Targets (this checkout)", ["target", "measured", "met"])

    def add(target: str, measured: str, met: bool | None) -> None:
        verdict = "—" if met is None else ("yes" if met else "NO")
        table.rows.append([target, measured, verdict])

    if "startup" in tables:
        data = tables["startup"].data
        base = data[f"{CURRENT}/without"]["median_ms"]
        with_app = data[f"{CURRENT}/with"]["median_ms"]
        if base is not None and with_app is not None:
            add(
                "start-up: the app adds at most 50 ms (median)",
                f"{with_app - base:+.1f} ms",
                with_app - base <= 50,
            )
        add(
            "start-up: litellm not imported by django.setup()",
            "imported" if data[f"{CURRENT}/with"]["litellm"] else "not imported",
            not data[f"{CURRENT}/with"]["litellm"],
        )
    if "overhead" in tables:
        result = tables["overhead"].data.get(CURRENT, {})
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
                add(
                    f"call overhead, {label}: {goal}",
                    f"{(value - 1) * 100:+.1f}% ({value:.3f}x)",
                    None if informational else value <= 1.05,
                )
            else:
                add(f"call overhead, {label}", failed(row or result), False)
    if "throughput" in tables:
        result = tables["throughput"].data.get(CURRENT, {})
        row = result.get("rows", {}).get("aembed", {})
        if "seconds" in row and "error" not in row:
            floor = -(-result["inputs"] // result["batch_size"])
            floor = floor / result["concurrency"] * result["latency"]
            add(
                "throughput: batched aembed() within 2x of the floor",
                f"{row['seconds'] / floor:.2f}x ({row['seconds']:.3f} s vs "
                f"{floor:.3f} s), max in flight {row['max_in_flight']}",
                row["seconds"] <= 2 * floor,
            )
        else:
            add("throughput: batched aembed()", failed(row or result), False)
    return table


def machine(old: OldEnvironment | None) -> list[str]:
    def version(name: str) -> str:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return "not installed"

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines = [
        f"date: {datetime.date.today().isoformat()}",
        f"machine: {os.cpu_count()} cores, {platform.system()} "
        f"{platform.machine()}, load average {load[0]:.2f} at the end"
        if load
        else f"machine: {os.cpu_count()} cores",
        f"Python {platform.python_version()}, LiteLLM {version('litellm')}, "
        f"Django {version('Django')}, Wagtail {version('wagtail')}, "
        f"wagtail-vector-index {version('wagtail-vector-index')} (this checkout)",
    ]
    if old is not None:
        if old.python:
            versions = old.details.get("versions", {})
            lines.append(
                "0.10.0 column: "
                + ", ".join(f"{k} {v}" for k, v in versions.items())
                + f"; installed by: {old.reason}"
            )
            if old.details.get("declared_install"):
                lines.append(
                    "0.10.0 as declared (pinned LiteLLM): "
                    + old.details["declared_install"]
                )
            if old.details.get("declared_litellm"):
                lines.append(
                    f"{OLD_DECLARED_LITELLM} (its pin) on this registry: "
                    + old.details["declared_litellm"]
                )
        else:
            lines.append(f"0.10.0 column: {old.reason}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs and calls")
    parser.add_argument(
        "--only",
        default="startup,overhead,throughput",
        help="comma-separated: startup, overhead, throughput",
    )
    parser.add_argument(
        "--with-old",
        action="store_true",
        help=f"add a column for {OLD_PACKAGE} (creates its venv on first use)",
    )
    parser.add_argument(
        "--old-venv", type=Path, default=BENCHMARKS / ".venv-old", help="its venv"
    )
    parser.add_argument("--markdown", action="store_true", help="print markdown")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--runs", type=int, help="start-up runs of each project")
    parser.add_argument("--calls", type=int, help="timed calls of each kind")
    args = parser.parse_args()
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = only - {"startup", "overhead", "throughput"}
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    args.runs = args.runs or (5 if args.quick else 15)
    args.calls = args.calls or (100 if args.quick else 300)
    args.warmup = 20 if args.quick else 50
    args.call_budget = 20.0 if args.quick else 60.0
    args.startup_budget = 60.0 if args.quick else 150.0
    args.inputs = 5000
    args.per_input_cap = 200 if args.quick else 500
    args.batch_size, args.concurrency, args.latency = 100, 4, 0.05
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

    started = time.monotonic()
    old = prepare_old(args.old_venv.resolve()) if args.with_old else None
    if old is not None and old.python is None:
        progress(f"No 0.10.0 column: {old.reason}")
    tables: dict[str, Table] = {}
    if "startup" in only:
        tables["startup"] = bench_startup(args, old)
    if "overhead" in only:
        tables["overhead"] = bench_overhead(args, old)
    if "throughput" in only:
        tables["throughput"] = bench_throughput(args, old)
    summary = targets(tables)
    header = machine(old) + [
        f"command: python benchmarks/run.py {' '.join(sys.argv[1:])}".rstrip(),
        f"total run time: {time.monotonic() - started:.0f} s",
    ]
    everything = [*tables.values(), summary]
    if args.markdown:
        print("\n".join(f"- {line}" for line in header) + "\n")
        print("\n\n".join(table.markdown() for table in everything))
    else:
        print("\n".join(header) + "\n")
        print("\n\n".join(table.text() for table in everything))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "header": header,
                    "results": {name: table.data for name, table in tables.items()},
                    "old": None if old is None else old.details,
                },
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
