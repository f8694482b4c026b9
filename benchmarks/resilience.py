"""A rebuild against a flaky provider: retries at work, beside a healthy run.

    python benchmarks/resilience.py [--pages 1000] [--share 0.2] [--batch 32]

1,000 pages (one chunk each), 1,536 dimensions, the loopback provider in a
process of its own answering each embedding request after 50 ms. Three
rebuilds from scratch of the same index, in one process, side by side:

1. the provider healthy;
2. the provider answering ``--share`` of the requests (at random, seeded)
   with 429 and ``Retry-After: 1``, the backend retrying
   (``CONFIG["MAX_RETRIES"]`` 5, its ``timeout`` 30 s);
3. the same provider with ``MAX_RETRIES`` 0: what a rebuild did before
   retries (the first 429 stops it; the old build keeps answering).

``BATCH_SIZE`` is 32 texts per request (``--batch``), so that 1,000 pages
make some 32 requests and a share of 20% fails several of them (at 256 a
request, four requests would often all pass). The embedding cache is off:
every run embeds every page.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from bench_common import RemoteProvider, add_pages

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent
sys.path.insert(0, str(REPOSITORY))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def setup_django() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    import django
    from django.conf import settings

    settings.DATABASES["default"]["NAME"] = str(
        Path(tempfile.mkdtemp()) / "bench.sqlite3"
    )
    # The usage ledger writes from its own thread (docs/usage.md, SQLite).
    settings.DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def rebuild(index, server, label: str) -> dict:
    from wagtail_vector_index.exceptions import AIProviderError
    from wagtail_vector_index.models import IndexState

    IndexState.objects.filter(index_name=index.name).delete()
    index.storage.next_build()
    index.storage.forget()
    server.reset()
    started = time.perf_counter()
    error = ""
    embedded = 0
    try:
        embedded = index.update().embedded
    except AIProviderError as failure:
        error = type(failure).__name__
    return {
        "run": label,
        "seconds": time.perf_counter() - started,
        "requests": server.count("/v1/embeddings"),
        "embedded": embedded,
        "error": error,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=1_000)
    parser.add_argument("--share", type=float, default=0.2)
    parser.add_argument("--batch", type=int, default=32)
    options = parser.parse_args()

    setup_django()
    from django.test.utils import override_settings
    from wagtail.models import Page

    from tests.testapp.models import ArticlePage
    from tests.utils import embedding_backend_settings

    server = RemoteProvider(latency=0.05, dimensions=1536)
    os.environ["OPENAI_API_KEY"] = "sk-bench"
    home = Page.get_first_root_node().add_child(
        instance=Page(title="Bench home", slug="bench-home")
    )
    add_pages(home, ArticlePage, options.pages)

    def settings(retries: int) -> dict:
        return {
            "EMBEDDING_BACKENDS": {
                "default": embedding_backend_settings(
                    server,
                    EMBEDDING_OUTPUT_DIMENSIONS=1536,
                    BATCH_SIZE=options.batch,
                    MAX_RETRIES=retries,
                    DEFAULT_PARAMETERS={"timeout": 30},
                )
            },
            "EMBEDDING_CACHE": {"ENABLED": False},
            # The breaker would pause the alias after 5 failures in a row:
            # here the failures are spread out, and counted as they come.
            "CIRCUIT_BREAKER": {"FAILURE_THRESHOLD": 0},
        }

    rows = []
    try:
        with override_settings(WAGTAIL_VECTOR_INDEX=settings(5)):
            index = ArticlePage.vector_index
            index.embedding_backend.embed_matrix(["warm-up"])
            rows.append(rebuild(index, server, "healthy"))
            server.set(
                random=random.Random(1),  # noqa: S311 (a benchmark)
                random_failures=options.share,
                random_mode="429",
                retry_after="1",
            )
            rows.append(rebuild(index, server, f"{options.share:.0%} 429, retries"))
        with override_settings(WAGTAIL_VECTOR_INDEX=settings(0)):
            server.set(random=random.Random(1))  # noqa: S311
            rows.append(rebuild(index, server, f"{options.share:.0%} 429, no retries"))
    finally:
        server.stop()

    healthy = rows[0]["seconds"]
    print(
        f"Rebuild of {options.pages:,} pages, 1,536 dimensions, "
        f"{options.batch} texts per request, 50 ms per request, "
        "at most 4 requests at once"
    )
    print()
    print("| run | seconds | vs healthy | requests | pages embedded | outcome |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        print(
            f"| {row['run']} | {row['seconds']:.2f} | "
            f"{row['seconds'] / healthy:.2f}x | {row['requests']} | "
            f"{row['embedded']:,} | {row['error'] or 'completed'} |"
        )


if __name__ == "__main__":
    main()
