"""What the index benchmarks share, for this checkout (``indexes.py``) and for
0.10.0 in its own venv (``old_indexes.py``): standard library only, so both
environments import it."""

from __future__ import annotations

from typing import Any

WORDS = "garden tomato rose star planet bread oven bicycle rain river".split()


def add_pages(home: Any, page_class: type, count: int) -> None:
    """``count`` pages of about 120 words (one chunk each) under ``home``."""
    for number in range(count):
        body = " ".join(WORDS[(number + i) % len(WORDS)] for i in range(120))
        home.add_child(
            instance=page_class(
                title=f"Page {number}",
                slug=f"p{number}",
                body=f"<p>{body} {number}</p>",
            )
        )


def percentile(values: list[float], fraction: float) -> float:
    """The value at ``fraction`` of the sorted values (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def print_rebuilds(label: str, rebuilds: dict[str, dict]) -> None:
    """The rebuild table: two runs per storage."""
    print(f"| {label} | run | seconds | provider calls | chunks embedded |")
    print("| --- | --- | ---: | ---: | ---: |")
    for storage, rebuild in rebuilds.items():
        for run in ("first", "second"):
            print(
                f"| {storage} | {run} | {rebuild[f'{run}_s']:.2f} | "
                f"{rebuild[f'{run}_calls']} | {rebuild[f'{run}_embedded']} |"
            )
