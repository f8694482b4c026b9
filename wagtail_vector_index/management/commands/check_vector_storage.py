"""manage.py check_vector_storage: say which vector storage is configured and
whether it answers, for deploy pipelines and monitoring.

Prints one line and exits 1 if the storage does not answer. ``--json`` prints
the same as one JSON object. Messages never contain a credential (a Qdrant
server's API key, say).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext

from wagtail_vector_index import conf
from wagtail_vector_index.index.storage import StorageCheck, check_storage


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return gettext(
            'Say which vector storage WAGTAIL_VECTOR_INDEX["STORAGE"] selects '
            "and check, with one small request, that it answers. Exits with "
            "status 1 if it does not."
        )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help=gettext("Print the result as one JSON object."),
        )

    def handle(self, *args: Any, as_json: bool = False, **options: Any) -> None:
        path = conf.get_storage_class_path() or conf.DATABASE_STORAGE
        try:
            result = check_storage()
        except ImproperlyConfigured as error:
            # A storage that cannot be made (its CONFIG, a missing package):
            # manage.py check says the same with its id.
            result = StorageCheck(ok=False, description=path, error=str(error))
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "ok": result.ok,
                        "storage": path,
                        "description": result.description,
                        "latency_ms": None
                        if result.milliseconds is None
                        else round(result.milliseconds, 1),
                        "error": result.error or None,
                    },
                    indent=2,
                )
            )
        elif result.ok:
            self.stdout.write(
                "  ".join(
                    [
                        path,
                        result.description,
                        self.style.SUCCESS(f"OK {result.milliseconds:.0f} ms"),
                    ]
                )
            )
        else:
            self.stdout.write(
                "  ".join(
                    [
                        path,
                        result.description,
                        self.style.ERROR(f"FAILED {result.error}"),
                    ]
                )
            )
        if not result.ok:
            raise CommandError(gettext("The vector storage does not answer."))
