"""manage.py prune_ai_usage: delete old usage records, blank old prompts."""

from __future__ import annotations

import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext

from wagtail_vector_index import conf
from wagtail_vector_index.models import AIUsageRecord


def _days(key: str) -> int:
    value = conf.get_usage_settings().get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CommandError(
            gettext(
                'WAGTAIL_VECTOR_INDEX["USAGE"]["%(key)s"] must be a whole number '
                "of days (0 or more)."
            )
            % {"key": key}
        )
    return value


class Command(BaseCommand):
    @property
    def help(self) -> str:  # type: ignore[override]
        return gettext(
            'Delete AI usage records older than USAGE["RETENTION_DAYS"] and '
            "blank the prompts and answers of records older than "
            'USAGE["PROMPT_RETENTION_DAYS"]. The monthly and daily totals '
            "(and so the budgets and the report's totals) are kept."
        )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext("Only say what would be deleted and blanked."),
        )

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        now = timezone.now()
        retention = _days("RETENTION_DAYS")
        prompt_retention = _days("PROMPT_RETENTION_DAYS")
        old = AIUsageRecord.objects.filter(
            created_at__lt=now - datetime.timedelta(days=retention)
        )
        with_prompts = (
            AIUsageRecord.objects.filter(
                created_at__lt=now - datetime.timedelta(days=prompt_retention)
            )
            .exclude(prompt="", response="")
            .exclude(pk__in=old.values("pk"))
        )
        values = {
            "old": old.count(),
            "prompts": with_prompts.count(),
            "days": retention,
            "prompt_days": prompt_retention,
        }
        if dry_run:
            self.stdout.write(
                gettext(
                    "Dry run: would delete %(old)s usage records older than "
                    "%(days)s days and blank the prompts and answers of "
                    "%(prompts)s records older than %(prompt_days)s days."
                )
                % values
            )
            return
        with_prompts.update(prompt="", response="")
        old.delete()
        self.stdout.write(
            gettext(
                "Deleted %(old)s usage records older than %(days)s days; blanked "
                "the prompts and answers of %(prompts)s records older than "
                "%(prompt_days)s days."
            )
            % values
        )
