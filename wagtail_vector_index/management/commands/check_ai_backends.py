"""manage.py check_ai_backends: check the connection of every configured
backend alias (or those named), for deploy pipelines and monitoring.

Prints one line per alias and exits 1 if any check failed (2 for an alias
that is not configured). ``--json`` prints the same as one JSON object.
Provider messages are shown as the admin shows them: never a credential.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext, ngettext

from wagtail_vector_index import ai
from wagtail_vector_index.backend_checks import (
    KINDS,
    BackendStatus,
    CheckResult,
    backend_status,
    check_backend,
)


def _entry(status: BackendStatus, result: CheckResult) -> dict[str, Any]:
    """One alias as ``--json`` prints it."""
    milliseconds = result.milliseconds
    return {
        "kind": status.kind,
        "alias": status.alias,
        "model": status.model_id or None,
        "provider": status.provider.provider,
        "offline": status.offline,
        "credentials": None if status.misconfigured else status.provider.credentials,
        "missing_credentials": list(status.provider.missing),
        "ok": result.ok,
        "latency_ms": None if milliseconds is None else round(milliseconds, 1),
        "error": result.error or None,
    }


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return gettext(
            "Check the connection of every configured AI backend (or those "
            "named) with the smallest request each can make, once: no "
            "retries, no fallbacks. Exits with status 1 if any check fails."
        )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--kind",
            choices=KINDS,
            help=gettext("Only check backends of this kind."),
        )
        parser.add_argument(
            "--alias",
            action="append",
            dest="aliases",
            metavar="ALIAS",
            help=gettext("Only check this alias (may be given more than once)."),
        )
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help=gettext("Print the results as one JSON object."),
        )

    def handle(
        self,
        *args: Any,
        kind: str | None = None,
        aliases: list[str] | None = None,
        as_json: bool = False,
        **options: Any,
    ) -> None:
        selected = self._selected(kind, aliases)
        entries = []
        failed = 0
        for kind_, alias in selected:
            status = backend_status(kind_, alias)
            result = check_backend(kind_, alias)
            failed += not result.ok
            entries.append(_entry(status, result))
            if not as_json:
                self._write_line(status, result)
        if as_json:
            self.stdout.write(
                json.dumps({"ok": not failed, "backends": entries}, indent=2)
            )
        if failed:
            raise CommandError(
                ngettext(
                    "%(failed)s of %(total)s AI backend failed its check.",
                    "%(failed)s of %(total)s AI backends failed their check.",
                    failed,
                )
                % {"failed": failed, "total": len(entries)}
            )
        if not as_json:
            self.stdout.write(
                self.style.SUCCESS(
                    ngettext(
                        "%(total)s AI backend checked: it works.",
                        "%(total)s AI backends checked: all work.",
                        len(entries),
                    )
                    % {"total": len(entries)}
                )
            )

    def _selected(
        self, kind: str | None, aliases: list[str] | None
    ) -> list[tuple[str, str]]:
        """``(kind, alias)`` pairs to check, in the order they are configured."""
        kinds = [kind] if kind else list(KINDS)
        configured = [(k, alias) for k in kinds for alias in ai.configured_aliases(k)]
        if not aliases:
            return configured
        unknown = sorted(set(aliases) - {alias for _, alias in configured})
        if unknown:
            raise CommandError(
                gettext("Not configured: %(aliases)s (configured: %(known)s).")
                % {
                    "aliases": ", ".join(f'"{alias}"' for alias in unknown),
                    "known": ", ".join(
                        dict.fromkeys(f'"{alias}"' for _, alias in configured)
                    )
                    or gettext("none"),
                },
                returncode=2,
            )
        return [(k, alias) for k, alias in configured if alias in aliases]

    def _write_line(self, status: BackendStatus, result: CheckResult) -> None:
        if status.misconfigured:
            credentials = "-"
        elif status.provider.missing:
            names = ", ".join(status.provider.missing)
            credentials = f"credentials {status.provider.credentials} ({names})"
        else:
            credentials = f"credentials {status.provider.credentials}"
        provider = "offline" if status.offline else status.provider.provider or "-"
        parts = [
            f"{status.kind:<9}",
            status.alias,
            status.model_id or "-",
            provider,
            credentials,
        ]
        if result.ok:
            outcome = self.style.SUCCESS(f"OK {result.milliseconds:.0f} ms")
        else:
            outcome = self.style.ERROR(f"FAILED {result.error}")
        self.stdout.write("  ".join([*parts, outcome]))
