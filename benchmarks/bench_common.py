"""What the benchmark scripts share: the loopback provider, timing summaries, the
tables, the venv of wagtail-vector-index 0.10.0, measuring in a child process,
and the report each script prints (``run.py`` prints several side by side).

Standard library only at module level: the older release's venv imports it too
(``old_indexes.py``, and the ``measure`` side of ``overhead.py`` and
``throughput.py``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent
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


# -- child processes ---------------------------------------------------------


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


def run_workers(
    script: str, options: list[str], old: OldEnvironment | None, label: str
) -> dict[str, dict]:
    """The results of ``script measure`` for this checkout and, when it is
    installed, the older release: {impl: result}."""
    results = {CURRENT: run_worker(Path(sys.executable), script, CURRENT, options)}
    if old and old.python:
        progress(f"{label}, 0.10.0...")
        results[OLD] = run_worker(old.python, script, OLD, options)
    return results


def run_worker(python: Path, script: str, impl: str, options: list[str]) -> dict:
    """``script measure --impl impl`` with ``python`` (this environment's or the
    older release's venv): the result it prints, or why there is none."""
    try:
        result = subprocess.run(
            [str(python), str(BENCHMARKS / script), "measure", "--impl", impl]
            + options,
            # Not the repository root (see measure_in_this_process).
            cwd=BENCHMARKS,
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


def measure_in_this_process(impl: str, benchmark: Callable[[], dict]) -> None:
    """Run ``benchmark`` against the package of ``impl`` and print its result
    (or why it failed) as one ``BENCH_RESULT`` line.

    Run from the ``benchmarks`` folder with the Python of the environment to
    measure: the repository root (which holds this checkout's package) is put
    on ``sys.path`` for ``current`` only, never for ``old``."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    # The loopback server ignores the key, but the OpenAI client wants one.
    os.environ.setdefault("OPENAI_API_KEY", "bench-not-a-secret")
    if impl == CURRENT:
        # Works without the package installed; with it, this is the same code.
        sys.path.insert(0, str(REPOSITORY))
    try:
        info = package_info()
        checkout = Path(info["package_path"]) == REPOSITORY / "wagtail_vector_index"
        if checkout != (impl == CURRENT):
            raise RuntimeError(f"imported the wrong package: {info['package_path']}")
        result = benchmark()
        result.update(info)
    except Exception as error:  # The whole column says why.
        result = {"error": error_text(error), "where": where(error)}
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def package_info() -> dict[str, Any]:
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


# -- the loopback provider ---------------------------------------------------


def load_providers() -> Any:
    """``tests/providers.py``, loaded by file path so that the repository root
    is not put on ``sys.path`` (where it would shadow the older release)."""
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


# -- timing ------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """The value at ``fraction`` of the sorted values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def summary(times: list[float]) -> dict[str, float]:
    """Median, p10, p90 (rank rounded down) and mean of ``times``, in ms."""
    ordered = sorted(times)
    return {
        "median_ms": statistics.median(ordered) * 1000,
        "p10_ms": ordered[int(0.1 * (len(ordered) - 1))] * 1000,
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
        "count": len(ordered),
    }


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


def failed(result: dict[str, Any]) -> str:
    where = f" ({result['where']})" if result.get("where") else ""
    return f"fails: {result['error']}{where}"


def target(name: str, measured: str, met: bool | None) -> list[str]:
    """A row of the targets table (``met`` None: shown for information)."""
    return [name, measured, "—" if met is None else ("yes" if met else "NO")]


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


def columns(old: OldEnvironment | None) -> list[str]:
    """The implementations shown: the older release only with --with-old."""
    return [CURRENT] if old is None else [CURRENT, OLD]


def old_cell(old: OldEnvironment | None) -> str | None:
    """The text of the older release's cells when it could not be measured."""
    if old is not None and old.python is None:
        return "not measured (see below)"
    return None


def unmeasured(
    old: OldEnvironment | None, impl: str, result: dict[str, Any], width: int = 4
) -> list[str] | None:
    """The ``width`` cells of a column that has no figures (the older release
    not installed, or the child process failed), or None where it has them."""
    note = old_cell(old) if impl == OLD else None
    if note:
        return [note] + [""] * (width - 1)
    if "error" in result:
        return [failed(result)] + [""] * (width - 1)
    return None


def add_old_note(table: Table, old: OldEnvironment | None) -> None:
    if old is None:
        table.notes.append(f"{LABELS[OLD]}: not requested (run with --with-old).")
    elif old.python is None:
        table.notes.append(f"{LABELS[OLD]}: not measured: {old.reason}")


# -- the index benchmarks (indexes.py, old_indexes.py) -----------------------

WORDS = "garden tomato rose star planet bread oven bicycle rain river".split()


def add_pages(home: Any, page_class: type, count: int, *, start: int = 0) -> None:
    """``count`` pages of about 120 words (one chunk each) under ``home``,
    numbered from ``start``."""
    for number in range(start, start + count):
        body = " ".join(WORDS[(number + i) % len(WORDS)] for i in range(120))
        home.add_child(
            instance=page_class(
                title=f"Page {number}",
                slug=f"p{number}",
                body=f"<p>{body} {number}</p>",
            )
        )


def print_rebuilds(label: str, rebuilds: dict[str, Any]) -> None:
    """The rebuild table: per storage, each size (one result or a list of
    them), first and unchanged second run."""
    print(
        f"| {label} | pages | run | seconds | provider calls | chunks embedded "
        "| peak memory MB |"
    )
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for storage, found in rebuilds.items():
        for rebuild in found if isinstance(found, list) else [found]:
            for run in ("first", "second"):
                peak = rebuild.get(f"{run}_peak_mb")
                print(
                    f"| {storage} | {rebuild.get('pages', 0):,} | {run} | "
                    f"{rebuild[f'{run}_s']:.2f} | {rebuild[f'{run}_calls']} | "
                    f"{rebuild[f'{run}_embedded']} | "
                    f"{'' if peak is None else f'{peak:.0f}'} |"
                )


# -- the report: one benchmark (its script) or several (run.py) --------------


@dataclass(frozen=True)
class Benchmark:
    """What ``run.py`` and a benchmark's own script need from it."""

    name: str
    #: Adds the benchmark's options (shown by its script and by run.py).
    add_options: Callable[[argparse.ArgumentParser], None]
    #: Fills in what the options left open (``--quick`` decides).
    settle: Callable[[argparse.Namespace], None]
    #: Measures and returns the table (its ``data`` holds the raw results).
    table: Callable[[argparse.Namespace, OldEnvironment | None], Table]
    #: The rows of the targets table, from the table's data.
    targets: Callable[[Any], list[list[str]]]
    #: For a benchmark timed in a child process (``run_worker``), so that the
    #: older release can be measured with its venv's Python: the options of
    #: its ``measure`` command, and the measurement, run in that process.
    add_measure_options: Callable[[argparse.ArgumentParser], None] | None = None
    measure: Callable[[argparse.Namespace], dict] | None = None


def command_line(doc: str, benchmarks: Sequence[Benchmark]) -> argparse.ArgumentParser:
    """The options of run.py, ``--only`` where there is a choice."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs and calls")
    if len(benchmarks) > 1:
        names = ",".join(benchmark.name for benchmark in benchmarks)
        parser.add_argument(
            "--only", default=names, help=f"comma-separated: {names.replace(',', ', ')}"
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
    for benchmark in benchmarks:
        benchmark.add_options(parser)
    return parser


def script(doc: str, benchmark: Benchmark) -> None:
    """A benchmark's own script: its report, as in run.py; or, with the
    ``measure`` command, its measurement in this process."""
    parser = command_line(doc, [benchmark])
    parser.set_defaults(command=None)
    if benchmark.measure is not None:
        commands = parser.add_subparsers(dest="command", title="in a child process")
        child = commands.add_parser(
            "measure",
            help="measure in this process and print one BENCH_RESULT line "
            "(what the report runs, with this Python or the older release's)",
        )
        child.add_argument("--impl", choices=[CURRENT, OLD], required=True)
        benchmark.add_measure_options(child)
    args = parser.parse_args()
    if args.command == "measure":
        measure_in_this_process(args.impl, lambda: benchmark.measure(args))
    else:
        report(parser, args, [benchmark])


def report(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    benchmarks: Sequence[Benchmark],
) -> None:
    """Run the chosen benchmarks; print the header, their tables and the
    targets (text or markdown), and write the raw results with ``--json``."""
    known = [benchmark.name for benchmark in benchmarks]
    only = set(known)
    if getattr(args, "only", None) is not None:
        only = {name.strip() for name in args.only.split(",") if name.strip()}
        unknown = only - set(known)
        if unknown:
            parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    for benchmark in benchmarks:
        benchmark.settle(args)
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

    started = time.monotonic()
    old = prepare_old(args.old_venv.resolve()) if args.with_old else None
    if old is not None and old.python is None:
        progress(f"No 0.10.0 column: {old.reason}")
    chosen = [benchmark for benchmark in benchmarks if benchmark.name in only]
    tables = {benchmark.name: benchmark.table(args, old) for benchmark in chosen}
    summary = Table("Targets (this checkout)", ["target", "measured", "met"])
    for benchmark in chosen:
        summary.rows += benchmark.targets(tables[benchmark.name].data)
    script = Path(sys.argv[0]).name
    header = machine(old) + [
        f"command: python benchmarks/{script} {' '.join(sys.argv[1:])}".rstrip(),
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


def machine(old: OldEnvironment | None) -> list[str]:
    """The header: date, machine, versions, and how 0.10.0 was installed."""

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


def _serve_provider(connection: Any, settings: dict[str, Any]) -> None:
    """The loopback provider, in a process of its own (see RemoteProvider)."""
    server = load_providers().ProviderServer().start()
    for name, value in settings.items():
        setattr(server.state, name, value)
    connection.send(server.openai_base)
    while True:
        try:
            operation, argument = connection.recv()
        except EOFError:
            break
        if operation == "set":
            for name, value in argument.items():
                setattr(server.state, name, value)
            connection.send(None)
        elif operation == "count":
            connection.send(len(server.requests_to(argument)))
        elif operation == "max_in_flight":
            connection.send(server.state.max_in_flight)
        elif operation == "reset":
            with server.state.lock:
                server.state.requests.clear()
                server.state.max_in_flight = 0
            connection.send(None)
        elif operation == "stop":
            server.stop()
            connection.send(None)
            break


class RemoteProvider:
    """The loopback provider of ``tests/providers.py`` in a child process.

    A real provider computes its replies on another machine; in this
    process the server's threads would take the interpreter lock from the
    client and add their CPU time to the client's. In a process of its own,
    ``time.process_time()`` of the benchmark is the client's CPU alone.
    ``settings`` are ``ServerState`` fields (``latency``, ``dimensions``).
    """

    def __init__(self, **settings: Any) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._connection, child = context.Pipe()
        self._process = context.Process(
            target=_serve_provider, args=(child, settings), daemon=True
        )
        self._process.start()
        self.openai_base: str = self._connection.recv()

    def _call(self, operation: str, argument: Any = None) -> Any:
        self._connection.send((operation, argument))
        return self._connection.recv()

    def set(self, **settings: Any) -> None:
        self._call("set", settings)

    def count(self, path: str) -> int:
        """Requests received on ``path`` since the start or the last reset."""
        return self._call("count", path)

    def max_in_flight(self) -> int:
        return self._call("max_in_flight")

    def reset(self) -> None:
        self._call("reset")

    def stop(self) -> None:
        if self._process.is_alive():
            self._call("stop")
            self._process.join(timeout=5)
