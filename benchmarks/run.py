"""Benchmarks of the app: start-up, call overhead, embedding throughput.

    python benchmarks/run.py [--quick] [--only startup,overhead,throughput,usage]
                             [--with-old] [--markdown] [--json FILE]

From the repository root, with the package installed in the running Python
(``make bench``). Every provider call goes to the loopback server of
``tests/providers.py`` on 127.0.0.1; every loop is bounded in count and time.
Each benchmark is also a script of its own (``--help``) that takes the
options below that apply to it; this one runs them one after the other and
prints their tables and the targets together.

1. Start-up (``startup.py``): ``django.setup()`` of the test project in new
   processes, with and without the app (``WVI_WITHOUT_APP=1``), alternating.
2. Call overhead (``overhead.py``): ``backend.chat()`` against
   ``litellm.completion()`` on the same server in one process, interleaved;
   plain and streaming.
3. Embedding throughput (``throughput.py``): 5,000 inputs, the server
   answering each request after 50 ms: batched ``aembed``, one request per
   input, the floor, sync ``embed``.
4. Usage ledger (``usage.py``): ``chat()`` with the usage ledger on and off,
   interleaved; a budget check with 1,000,000 ledger rows.

``--with-old`` adds a column for wagtail-vector-index 0.10.0 from PyPI, in a
venv of its own (``benchmarks/.venv-old`` unless ``--old-venv``), created on
first use. Figures go to ``docs/benchmarks.md`` by hand (``--markdown``).
"""

from __future__ import annotations

import overhead
import startup
import throughput
import usage
from bench_common import command_line, report

ALL = [startup.BENCHMARK, overhead.BENCHMARK, throughput.BENCHMARK, usage.BENCHMARK]


def main() -> None:
    parser = command_line(__doc__, ALL)
    report(parser, parser.parse_args(), ALL)


if __name__ == "__main__":
    main()
