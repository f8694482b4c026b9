"""manage.py describe_images: write images' descriptions (alt text) with the
chat alias that describes images."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext

from wagtail_vector_index import image_descriptions, usage
from wagtail_vector_index.exceptions import (
    AIBudgetExceededError,
    AIProviderError,
    InvalidAIBackendError,
)
from wagtail_vector_index.management import spending


def _by_id_or(queryset: Any, field: str, value: str) -> Any:
    """The object of ``queryset`` whose id is ``value`` (all digits), else
    whose ``field`` is ``value``; ``None`` if there is none."""
    if value.isdigit():
        return queryset.filter(pk=int(value)).first()
    return queryset.filter(**{field: value}).first()


class Command(BaseCommand):
    #: For tests: ``call_command(..., stdin=...)`` (as createsuperuser).
    stealth_options = ("stdin",)

    @property
    def help(self) -> str:  # type: ignore[override]
        return gettext(
            "Describe images with the chat alias that describes images "
            '(WAGTAIL_VECTOR_INDEX["IMAGE_DESCRIPTION"]) and save the '
            "descriptions, which Wagtail uses as alt text. Shows the estimated "
            "cost first and asks before spending (unless --yes); calls count "
            "against the site's budget and stop cleanly when it runs out."
        )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--missing",
            action="store_true",
            help=gettext("Only images whose description is empty."),
        )
        parser.add_argument(
            "--collection",
            action="append",
            default=[],
            metavar="NAME_OR_ID",
            help=gettext(
                "Only images in this collection (its name or id; not its "
                "sub-collections). May be given more than once."
            ),
        )
        parser.add_argument(
            "--site",
            metavar="HOSTNAME_OR_ID",
            help=gettext(
                "The site whose AI settings, budget and language apply "
                "(default: the default site)."
            ),
        )
        parser.add_argument(
            "--yes",
            "--noinput",
            "--no-input",
            action="store_false",
            dest="interactive",
            help=gettext(
                "Do not ask before spending money. Without a terminal the "
                "command never asks: it stops unless this is given (or the "
                "estimated cost is $0)."
            ),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=gettext(
                "Only show how many images would be described, and the estimate."
            ),
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help=gettext(
                "Start even if the estimated cost exceeds what is left of the "
                "site's monthly AI budget (calls still stop when it is used up)."
            ),
        )

    def handle(
        self,
        *args: Any,
        missing: bool = False,
        collection: list[str] | None = None,
        site: str | None = None,
        interactive: bool = True,
        dry_run: bool = False,
        force: bool = False,
        **options: Any,
    ) -> None:
        from wagtail.images import get_image_model

        model = get_image_model()
        if not image_descriptions.has_description_field(model):
            raise CommandError(
                gettext("The image model %(model)s has no description field.")
                % {"model": model._meta.label}
            )
        the_site = self._site(site)
        try:
            backend = image_descriptions.get_backend(site=the_site)
        except InvalidAIBackendError as error:
            raise CommandError(str(error)) from error
        images = self._images(model, missing, collection or [])
        count = images.count()
        if not count:
            self.stdout.write(gettext("No images to describe."))
            return
        tokens, cost = image_descriptions.estimate(backend, count)
        self.stdout.write(
            # Translators: %(cost)s is "about $0.0012" or "cost unknown for
            # this model".
            gettext(
                "%(count)s images to describe with %(alias)s (%(model)s): about "
                "%(tokens)s tokens, %(cost)s."
            )
            % {
                "count": count,
                "alias": backend.alias,
                "model": backend.config.model_id,
                "tokens": tokens,
                "cost": spending.cost_text(cost),
            }
        )
        replaced = images.exclude(description="").count()
        if replaced:
            self.stdout.write(
                self.style.WARNING(
                    gettext(
                        "%(count)s of them have a description, which will be "
                        "replaced (--missing leaves them alone)."
                    )
                    % {"count": replaced}
                )
            )
        if dry_run:
            self.stdout.write(gettext("Dry run: nothing described."))
            return
        if not force:
            over = spending.over_budget(
                the_site, {usage.USD: cost, usage.TOKENS: tokens}
            )
            if over:
                raise CommandError(
                    gettext(
                        "Describing would spend about %(needed)s, but what is "
                        "left of this month's AI budget of the site is "
                        "%(left)s. Raise the budget (Settings › AI settings) or "
                        "pass --force to start anyway."
                    )
                    % {"needed": over[0], "left": over[1]}
                )
        stdin = options.get("stdin") or sys.stdin
        if interactive and cost != 0 and not self._confirm(count, stdin):
            self.stdout.write(gettext("Nothing described."))
            return
        self._describe(images, count, the_site)

    def _site(self, value: str | None) -> Any:
        from wagtail.models import Site

        if value is None:
            site = Site.objects.filter(is_default_site=True).first()
            if site is None:
                raise CommandError(gettext("There is no default site; pass --site."))
            return site
        site = _by_id_or(Site.objects.all(), "hostname", value)
        if site is None:
            raise CommandError(
                gettext("No site %(site)s (give its hostname or id).") % {"site": value}
            )
        return site

    def _images(self, model: Any, missing: bool, collections: list[str]) -> Any:
        from wagtail.models import Collection

        images = model.objects.order_by("pk")
        if missing:
            images = images.filter(description="")
        if collections:
            chosen = []
            for value in collections:
                found = _by_id_or(Collection.objects.all(), "name", value)
                if found is None:
                    raise CommandError(
                        gettext("No collection %(collection)s (give its name or id).")
                        % {"collection": value}
                    )
                chosen.append(found.pk)
            images = images.filter(collection__in=chosen)
        return images

    def _confirm(self, count: int, stdin: Any) -> bool:
        if not spending.is_terminal(stdin):
            # As update_vector_indexes: no one can answer, and a silent "yes"
            # would spend money.
            raise CommandError(
                gettext(
                    "It would ask before spending, but standard input is not a "
                    "terminal. Pass --yes to describe without asking (in cron "
                    "jobs and deployments), or --dry-run to see the estimate "
                    "only."
                )
            )
        return spending.ask(
            self.stdout,
            # Translators: the answers understood are "y" and "yes", whatever
            # the language.
            gettext("Describe %(count)s images now? [y/N]") % {"count": count},
            stdin,
        )

    def _describe(self, images: Any, count: int, site: Any) -> None:
        described = failed = 0
        for number, image in enumerate(images.iterator(), start=1):
            where = f"[{number}/{count}] {image.pk} {image.title!r}"
            try:
                description = image_descriptions.describe_image(image, site=site)
            except AIBudgetExceededError as error:
                raise CommandError(
                    gettext(
                        "Stopped: %(error)s %(described)s images were described, "
                        "%(failed)s failed; run the command again (with --missing) "
                        "when there is budget left."
                    )
                    % {"error": error, "described": described, "failed": failed}
                ) from error
            except (
                AIProviderError,
                InvalidAIBackendError,
                image_descriptions.ImageDescriptionError,
            ) as error:
                failed += 1
                self.stdout.write(
                    self.style.WARNING(
                        f"  {where}: " + gettext("failed: %(error)s") % {"error": error}
                    )
                )
                continue
            image.description = description.text
            image.save(update_fields=["description"])
            described += 1
            self.stdout.write(f"  {where}: {description.text}")
        summary = gettext("Done: %(described)s described, %(failed)s failed.") % {
            "described": described,
            "failed": failed,
        }
        if failed:
            raise CommandError(summary)
        self.stdout.write(self.style.SUCCESS(summary))
