"""manage.py evaluate_vector_index: recall@k, MRR and nDCG@k of a vector
index on labelled questions, for each search mode side by side."""

from __future__ import annotations

import copy
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from wagtail_vector_index import ai
from wagtail_vector_index.exceptions import WagtailVectorIndexError
from wagtail_vector_index.index import evaluation, hybrid
from wagtail_vector_index.index.registry import get_index
from wagtail_vector_index.index.scope import ALL_LOCALES


class Command(BaseCommand):
    help = (
        "Measure how well a vector index finds the pages that answer labelled "
        "questions: recall@k, MRR and nDCG@k for each search mode (vector, "
        "keyword, hybrid), with the median latency of a search. The questions "
        'file holds one JSON object per line: {"question": "...", "expected": '
        "[page ids, slugs or URLs]}. --compare-alias measures the same "
        "questions with another embedding alias, on a temporary copy of the "
        "index (its embeddings are paid for once; the embedding cache keeps "
        "them for the next run)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("index", help="The vector index's name.")
        parser.add_argument(
            "--questions", required=True, help="The JSON-lines file of questions."
        )
        parser.add_argument(
            "-k", type=int, default=5, help="Results per question (default 5)."
        )
        parser.add_argument(
            "--modes",
            default=",".join(hybrid.MODES),
            help="Comma-separated search modes (default: vector,keyword,hybrid).",
        )
        parser.add_argument(
            "--compare-alias",
            metavar="ALIAS",
            help="Also measure the questions with this embedding alias.",
        )
        parser.add_argument(
            "--keep",
            action="store_true",
            help="Keep the temporary index of --compare-alias (for the next run).",
        )
        parser.add_argument(
            "--json", action="store_true", help="Print the figures as JSON."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            index = get_index(options["index"])
        except KeyError as error:
            raise CommandError(error.args[0]) from None
        k = options["k"]
        if k < 1:
            raise CommandError("-k must be 1 or more.")
        modes = [mode.strip() for mode in options["modes"].split(",") if mode.strip()]
        for mode in modes:
            if mode not in hybrid.MODES:
                raise CommandError(
                    f"Unknown mode {mode!r}: use {', '.join(hybrid.MODES)}."
                )
        path = options["questions"]
        try:
            questions = evaluation.read_questions(path)
            evaluation.resolve(index, questions, path)
        except evaluation.QuestionsFileError as error:
            raise CommandError(str(error)) from None

        runs = [(index, False)]
        if options["compare_alias"]:
            runs.append((self._other(index, options["compare_alias"]), True))
        report = []
        try:
            for run, temporary in runs:
                if temporary:
                    self._build(run)
                figures = self._measure(run, questions, modes, k)
                backend = run.embedding_backend
                report.append(
                    {
                        "index": run.name,
                        "embedding_alias": run.embedding_alias,
                        "model": backend.config.model_id,
                        "k": k,
                        "questions": len(questions),
                        "modes": [vars(figure) for figure in figures],
                    }
                )
        finally:
            for run, temporary in runs:
                if temporary and not options["keep"]:
                    run.storage.drop()
        if options["json"]:
            self.stdout.write(json.dumps(report, indent=2))
            return
        for block in report:
            self._print(block)

    def _other(self, index: Any, alias: str) -> Any:
        try:
            ai.get_embedding_backend(alias)
        except WagtailVectorIndexError as error:
            raise CommandError(str(error)) from None
        other = copy.copy(index)
        other.name = f"{index.name}@{alias}"
        other.embedding_alias = alias
        return other

    def _build(self, index: Any) -> None:
        estimate = index.estimate()
        cost = "unknown cost" if estimate.cost is None else f"${estimate.cost:.4f}"
        self.stderr.write(
            f'Building the temporary index "{index.name}" with '
            f"{estimate.model_id}: {estimate.chunks_to_embed} chunks to embed "
            f"({estimate.tokens_to_embed} tokens, {cost})."
        )
        try:
            index.update()
        except WagtailVectorIndexError as error:
            raise CommandError(str(error)) from None

    def _measure(
        self, index: Any, questions: list, modes: list[str], k: int
    ) -> list[evaluation.ModeFigures]:
        try:
            if index.check_state() is None:
                raise CommandError(
                    f'The vector index "{index.name}" is not built: run '
                    "manage.py update_vector_indexes first."
                )
            return evaluation.evaluate(
                index, questions, modes, k, {"locale": ALL_LOCALES}
            )
        except WagtailVectorIndexError as error:
            raise CommandError(str(error)) from None

    def _print(self, block: dict[str, Any]) -> None:
        k = block["k"]
        self.stdout.write(
            f'Vector index "{block["index"]}": {block["questions"]} questions, '
            f'k={k}, embedding alias "{block["embedding_alias"]}" '
            f"({block['model']})"
        )
        header = f"| mode | recall@{k} | MRR | nDCG@{k} | median latency ms |"
        self.stdout.write(header)
        self.stdout.write("| --- | ---: | ---: | ---: | ---: |")
        for figure in block["modes"]:
            self.stdout.write(
                f"| {figure['mode']} | {figure['recall']:.3f} | {figure['mrr']:.3f} "
                f"| {figure['ndcg']:.3f} | {figure['latency_ms']:.1f} |"
            )
        self.stdout.write("")
