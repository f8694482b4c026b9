"""manage.py update_vector_indexes: bring every vector index up to date."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext

from wagtail_vector_index import usage
from wagtail_vector_index.exceptions import (
    AIBudgetExceededError,
    AIProviderError,
    InvalidAIBackendError,
)
from wagtail_vector_index.index.base import UpdateEstimate
from wagtail_vector_index.index.lease import (
    IndexLeaseLostError,
    IndexUpdateInProgressError,
)
from wagtail_vector_index.index.registry import get_indexes
from wagtail_vector_index.index.storage.base import InvalidVectorError
from wagtail_vector_index.management import spending
from wagtail_vector_index.management.spending import cost_text


def describe(estimate: UpdateEstimate) -> str:
    cost = cost_text(estimate.cost)
    # Translators: %(cost)s is "about $0.0012" or "cost unknown for this model".
    text = gettext(
        "%(objects)s objects, %(chunks)s chunks; %(to_embed)s chunks to embed "
        "with %(model)s (%(tokens)s tokens, %(cost)s)"
    ) % {
        "objects": estimate.objects,
        "chunks": estimate.chunks,
        "to_embed": estimate.chunks_to_embed,
        "model": estimate.model_id,
        "tokens": estimate.tokens_to_embed,
        "cost": cost,
    }
    if estimate.chunks_cached:
        text += "; " + gettext(
            "%(cached)s chunks from the embedding cache (no provider call)"
        ) % {"cached": estimate.chunks_cached}
    return text


class Command(BaseCommand):
    #: For tests: ``call_command(..., stdin=...)`` (as createsuperuser).
    stealth_options = ("stdin",)

    @property
    def help(self) -> str:  # type: ignore[override]
        # A property: translated when the help is shown (argparse needs a
        # plain string, not a lazy translation).
        return gettext(
            "Embed new and changed content of the vector indexes. Unchanged "
            "chunks keep their vectors (invalid stored vectors are embedded "
            "again); the old index answers until the new one is complete. One "
            "update of an index runs at a time: if another process is updating "
            "it, the command stops with an error unless --wait gives it time to "
            "finish. Index updates count against the budget for calls without "
            "a site: the command refuses to start when the estimate exceeds "
            "what is left (unless --force), and stops if the budget runs out."
        )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "indexes", nargs="*", help=gettext("Index names (default: all).")
        )
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help=gettext(
                "Do not ask before spending money on embeddings. Without a "
                "terminal the command never asks: it stops unless this is "
                "given (or the estimated cost is $0)."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext("Only show what would be embedded."),
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help=gettext(
                "If another process is updating an index, wait up to this many "
                "seconds for it to finish (default: 0, stop with an error)."
            ),
        )
        parser.add_argument(
            "--rebuild",
            action="store_true",
            help=gettext(
                "Write a complete new build of each index, replacing the old "
                "one when it is complete, even if only a few objects changed "
                "(by default those are updated in place). Unchanged chunks "
                "still keep their vectors."
            ),
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help=gettext(
                "Start even if the estimated cost exceeds what is left of the "
                "monthly AI budget for calls without a site (calls still stop "
                "when it is used up)."
            ),
        )

    def handle(
        self,
        *args: Any,
        indexes: list[str],
        interactive: bool,
        dry_run: bool,
        wait: float = 0.0,
        force: bool = False,
        rebuild: bool = False,
        **options: Any,
    ) -> None:
        names = indexes
        indexes = get_indexes()
        unknown = sorted(set(names) - set(indexes))
        if unknown:
            raise CommandError(
                gettext("Unknown index: %(unknown)s. Known: %(known)s.")
                % {
                    "unknown": ", ".join(unknown),
                    "known": ", ".join(sorted(indexes)) or gettext("none"),
                }
            )
        if not indexes:
            self.stdout.write(gettext("No vector indexes are registered."))
            return
        for name in names or sorted(indexes):
            if dry_run:
                self._dry_run(indexes[name])
            else:
                self._update(
                    indexes[name],
                    interactive=interactive,
                    wait=wait,
                    force=force,
                    rebuild=rebuild,
                    # call_command(stdin=...) in tests, as createsuperuser.
                    stdin=options.get("stdin") or sys.stdin,
                )

    def _dry_run(self, index: Any) -> None:
        # No lease: a dry run reads and writes nothing that an update uses.
        self.stdout.write(self.style.MIGRATE_HEADING(self._heading(index)))
        try:
            estimate = index.estimate()
        except (AIProviderError, InvalidAIBackendError) as error:
            raise CommandError(
                gettext("Estimating %(index)s failed: %(error)s")
                % {"index": index.name, "error": error}
            ) from error
        self.stdout.write(f"  {describe(estimate)}")
        self.stdout.write("  " + gettext("Dry run: not updated."))

    def _heading(self, index: Any) -> str:
        return gettext("Index %(index)s") % {"index": index.name}

    def _over_budget(self, estimate: UpdateEstimate) -> str | None:
        """Why the estimate does not fit in what is left of the budget for
        calls without a site (index updates have no site), or ``None``."""
        if not estimate.chunks_to_embed:
            return None
        over = spending.over_budget(
            None, {usage.USD: estimate.cost, usage.TOKENS: estimate.tokens_to_embed}
        )
        if over is None:
            return None
        return gettext(
            "The update would spend about %(needed)s, but what is "
            "left of this month's AI budget for calls without a "
            "site is %(left)s. Raise the budget "
            '(WAGTAIL_VECTOR_INDEX["USAGE"]'
            '["NO_SITE_MONTHLY_BUDGET_USD"] / "_TOKENS") or pass '
            "--force to start anyway."
        ) % {"needed": over[0], "left": over[1]}

    def _confirm(
        self, interactive: bool, force: bool, refusals: list[str], stdin: Any
    ) -> Any:
        def confirm(estimate: UpdateEstimate) -> bool:
            self.stdout.write(f"  {describe(estimate)}")
            refusal = None if force else self._over_budget(estimate)
            if refusal:
                refusals.append(refusal)
                return False
            # Nothing to pay for (an offline backend): nothing to ask. An
            # unknown cost (None) is asked about like any other.
            if not interactive or estimate.cost == 0:
                return True
            if not spending.is_terminal(stdin):
                # As createsuperuser does: no one can answer, and waiting for
                # an answer that never comes (or EOFError) helps no one. Not
                # a silent "yes" either: this command spends money.
                refusals.append(
                    gettext(
                        "it would ask before spending, but standard input is "
                        "not a terminal. Pass --noinput to embed without asking "
                        "(in cron jobs and deployments), or --dry-run to see "
                        "the estimate only."
                    )
                )
                return False
            # Translators: the answers understood are "y" and "yes", whatever
            # the language.
            return spending.ask(self.stdout, "  " + gettext("Embed now? [y/N]"), stdin)

        return confirm

    def _update(
        self,
        index: Any,
        *,
        interactive: bool,
        wait: float,
        force: bool = False,
        rebuild: bool = False,
        stdin: Any = None,
    ) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(self._heading(index)))

        def progress(done: int, total: int) -> None:
            self.stdout.write(
                "  "
                + gettext("embedded %(done)s/%(total)s chunks")
                % {"done": done, "total": total}
            )

        refusals: list[str] = []
        try:
            report = index.update(
                confirm=self._confirm(interactive, force, refusals, stdin),
                progress=progress,
                wait=wait,
                rebuild=rebuild,
            )
        except AIBudgetExceededError as error:
            raise CommandError(
                gettext(
                    "Updating %(index)s stopped: %(error)s The index as it was "
                    "before keeps answering; run the command again when there "
                    "is budget left."
                )
                % {"index": index.name, "error": error}
            ) from error
        except IndexLeaseLostError as error:
            raise CommandError(str(error)) from error
        except IndexUpdateInProgressError as error:
            # Translators: %(error)s says which process is updating the index.
            raise CommandError(
                gettext(
                    "%(error)s Run the command again when it has finished, or "
                    "pass --wait SECONDS to wait for it."
                )
                % {"error": error}
            ) from error
        except (AIProviderError, InvalidAIBackendError, InvalidVectorError) as error:
            raise CommandError(
                gettext(
                    "Updating %(index)s failed: %(error)s The index as it was "
                    "before keeps answering; run the command again to retry."
                )
                % {"index": index.name, "error": error}
            ) from error
        if refusals:
            raise CommandError(
                gettext("Not updating %(index)s: %(reason)s")
                % {"index": index.name, "reason": refusals[0]}
            )
        if report.invalid:
            self.stdout.write(
                self.style.WARNING(
                    "  "
                    + gettext(
                        "%(count)s stored vectors were invalid (wrong dimensions, "
                        "NaN or infinite values) and were replaced."
                    )
                    % {"count": report.invalid}
                )
            )
        if report.unchanged:
            self.stdout.write(
                "  "
                + gettext(
                    "%(objects)s objects, %(chunks)s chunks: unchanged, nothing "
                    "to embed."
                )
                % {"objects": report.objects, "chunks": report.chunks}
            )
            return
        if report.cancelled:
            self.stdout.write("  " + gettext("Not updated."))
            return
        how = (
            gettext("In place: %(changed)s objects written again, %(removed)s removed.")
            if report.in_place
            else gettext(
                "A complete new build (%(changed)s objects changed, %(removed)s "
                "removed) replaced the old one."
            )
        )
        self.stdout.write(
            "  " + how % {"changed": report.changed, "removed": report.removed}
        )
        if report.cached:
            self.stdout.write(
                self.style.SUCCESS(
                    "  "
                    + gettext(
                        "Done: %(embedded)s chunks embedded, %(cached)s from the "
                        "embedding cache, %(reused)s reused."
                    )
                    % {
                        "embedded": report.embedded,
                        "cached": report.cached,
                        "reused": report.reused,
                    }
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    "  "
                    + gettext("Done: %(embedded)s chunks embedded, %(reused)s reused.")
                    % {"embedded": report.embedded, "reused": report.reused}
                )
            )
