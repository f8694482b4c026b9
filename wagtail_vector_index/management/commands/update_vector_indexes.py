"""manage.py update_vector_indexes: bring every vector index up to date."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext

from wagtail_vector_index.exceptions import AIProviderError, InvalidAIBackendError
from wagtail_vector_index.index.base import UpdateEstimate
from wagtail_vector_index.index.lease import (
    IndexLeaseLostError,
    IndexUpdateInProgressError,
)
from wagtail_vector_index.index.registry import get_indexes
from wagtail_vector_index.index.storage.base import InvalidVectorError


def describe(estimate: UpdateEstimate) -> str:
    cost = (
        gettext("cost unknown for this model")
        if estimate.cost is None
        # Translators: an estimated cost in US dollars, e.g. "about $0.0012".
        else gettext("about $%(cost).4f") % {"cost": estimate.cost}
    )
    # Translators: %(cost)s is "about $0.0012" or "cost unknown for this model".
    return gettext(
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


class Command(BaseCommand):
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
            "finish."
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
            help=gettext("Do not ask before spending money on embeddings."),
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

    def handle(
        self,
        *args: Any,
        indexes: list[str],
        interactive: bool,
        dry_run: bool,
        wait: float = 0.0,
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
                self._update(indexes[name], interactive=interactive, wait=wait)

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

    def _confirm(self, interactive: bool) -> Any:
        def confirm(estimate: UpdateEstimate) -> bool:
            self.stdout.write(f"  {describe(estimate)}")
            if not interactive:
                return True
            # Translators: the answers understood are "y" and "yes", whatever
            # the language.
            answer = input("  " + gettext("Embed now? [y/N]") + " ")
            return answer.strip().lower() in ("y", "yes")

        return confirm

    def _update(self, index: Any, *, interactive: bool, wait: float) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(self._heading(index)))

        def progress(done: int, total: int) -> None:
            self.stdout.write(
                "  "
                + gettext("embedded %(done)s/%(total)s chunks")
                % {"done": done, "total": total}
            )

        try:
            report = index.update(
                confirm=self._confirm(interactive), progress=progress, wait=wait
            )
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
        elif report.cancelled:
            self.stdout.write("  " + gettext("Not updated."))
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    "  "
                    + gettext("Done: %(embedded)s chunks embedded, %(reused)s reused.")
                    % {"embedded": report.embedded, "reused": report.reused}
                )
            )
