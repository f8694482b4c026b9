"""manage.py update_vector_indexes: bring every vector index up to date."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from wagtail_vector_index.exceptions import AIProviderError, InvalidAIBackendError
from wagtail_vector_index.index.base import UpdateEstimate
from wagtail_vector_index.index.chunk_table import InvalidVectorError
from wagtail_vector_index.index.lease import (
    IndexLeaseLostError,
    IndexUpdateInProgressError,
)
from wagtail_vector_index.index.registry import get_indexes


def describe(estimate: UpdateEstimate) -> str:
    cost = (
        "cost unknown for this model"
        if estimate.cost is None
        else f"about ${estimate.cost:.4f}"
    )
    return (
        f"{estimate.objects} objects, {estimate.chunks} chunks; "
        f"{estimate.chunks_to_embed} chunks to embed with {estimate.model_id} "
        f"({estimate.tokens_to_embed} tokens, {cost})"
    )


class Command(BaseCommand):
    help = (
        "Embed new and changed content of the vector indexes. Unchanged chunks "
        "keep their vectors (invalid stored vectors are embedded again); the old "
        "index answers until the new one is complete. One update of an index "
        "runs at a time: if another process is updating it, the command stops "
        "with an error unless --wait gives it time to finish."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("indexes", nargs="*", help="Index names (default: all).")
        parser.add_argument(
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help="Do not ask before spending money on embeddings.",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Only show what would be embedded."
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="If another process is updating an index, wait up to this many "
            "seconds for it to finish (default: 0, stop with an error).",
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
                f"Unknown index: {', '.join(unknown)}. "
                f"Known: {', '.join(sorted(indexes)) or 'none'}."
            )
        if not indexes:
            self.stdout.write("No vector indexes are registered.")
            return
        for name in names or sorted(indexes):
            if dry_run:
                self._dry_run(indexes[name])
            else:
                self._update(indexes[name], interactive=interactive, wait=wait)

    def _dry_run(self, index: Any) -> None:
        # No lease: a dry run reads and writes nothing that an update uses.
        self.stdout.write(self.style.MIGRATE_HEADING(f"Index {index.name}"))
        try:
            estimate = index.estimate()
        except (AIProviderError, InvalidAIBackendError) as error:
            raise CommandError(f"Estimating {index.name} failed: {error}") from error
        self.stdout.write(f"  {describe(estimate)}")
        self.stdout.write("  Dry run: not updated.")

    def _confirm(self, interactive: bool) -> Any:
        def confirm(estimate: UpdateEstimate) -> bool:
            self.stdout.write(f"  {describe(estimate)}")
            if not interactive:
                return True
            answer = input("  Embed now? [y/N] ")
            return answer.strip().lower() in ("y", "yes")

        return confirm

    def _update(self, index: Any, *, interactive: bool, wait: float) -> None:
        self.stdout.write(self.style.MIGRATE_HEADING(f"Index {index.name}"))

        def progress(done: int, total: int) -> None:
            self.stdout.write(f"  embedded {done}/{total} chunks")

        try:
            report = index.update(
                confirm=self._confirm(interactive), progress=progress, wait=wait
            )
        except IndexLeaseLostError as error:
            raise CommandError(str(error)) from error
        except IndexUpdateInProgressError as error:
            raise CommandError(
                f"{error} Run the command again when it has finished, or pass "
                "--wait SECONDS to wait for it."
            ) from error
        except (AIProviderError, InvalidAIBackendError, InvalidVectorError) as error:
            raise CommandError(
                f"Updating {index.name} failed: {error} The index as it was "
                "before keeps answering; run the command again to retry."
            ) from error
        if report.invalid:
            self.stdout.write(
                self.style.WARNING(
                    f"  {report.invalid} stored vectors were invalid (wrong "
                    "dimensions, NaN or infinite values) and were replaced."
                )
            )
        if report.unchanged:
            self.stdout.write(
                f"  {report.objects} objects, {report.chunks} chunks: unchanged, "
                "nothing to embed."
            )
        elif report.cancelled:
            self.stdout.write("  Not updated.")
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"  Done: {report.embedded} chunks embedded, "
                    f"{report.reused} reused."
                )
            )
