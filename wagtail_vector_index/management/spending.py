"""What the commands that spend money on providers share
(``update_vector_indexes``, ``describe_images``): amounts and estimates in
words, and asking before spending, which only a person at a terminal can
answer."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from wagtail_vector_index import usage


def amount(value: Any, unit: str) -> str:
    """``value`` of a budget ``unit`` in words: "$0.0012" or "120 tokens"."""
    if unit == usage.USD:
        return gettext("$%(amount)s") % {"amount": f"{float(value):.4f}"}
    return gettext("%(count)s tokens") % {"count": value}


def cost_text(cost: float | None) -> str:
    """An estimated cost in words ("about $0.0012", or that it is unknown)."""
    if cost is None:
        return gettext("cost unknown for this model")
    # Translators: an estimated cost in US dollars, e.g. "about $0.0012".
    return gettext("about $%(cost).4f") % {"cost": cost}


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is a terminal someone can answer at."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # A closed or detached stream.
        return False


def ask(stdout: Any, question: str, stdin: Any) -> bool:
    """Write ``question`` (the line left open for the answer) and whether
    the line read from ``stdin`` says yes: "y" or "yes", whatever the
    language; "" (the end of the input) is no."""
    stdout.write(question + " ", ending="")
    stdout.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


def over_budget(
    site: Any, needs: dict[str, float | int | None]
) -> tuple[str, str] | None:
    """The first budget unit of ``site`` (``None``: calls without a site)
    whose remainder is less than ``needs`` asks for, as ``(needed, left)``
    in words; ``None`` when everything fits (or no budget applies)."""
    for unit, available in usage.remaining(site).items():
        needed = needs.get(unit)
        if needed is not None and needed > available:
            return amount(needed, unit), amount(available, unit)
    return None
