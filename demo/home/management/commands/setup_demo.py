"""``manage.py setup_demo``: prepare the demo site; safe to run again and again.

Creates the ``admin`` superuser, puts a ``HomePage`` in place of Wagtail's
welcome page, adds sample articles, then reports the login and the AI backends
in use. Anything already there is left alone.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand
from django.db import transaction
from wagtail.models import Page, Site

from home.articles import ARTICLES
from home.models import ArticlePage, HomePage
from home.pictures import PICTURES, ensure_pictures
from wagtail_vector_index import ai, conf

SITE_URL = "http://127.0.0.1:8000/"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"
HOME_SLUG = "home"

HOME_PAGE = {
    "title": "Welcome to the wagtail_vector_index demo",
    "intro": (
        "Twenty short articles (gardening, the night sky, cooking, cycling, "
        "the house) to try chat and embeddings on. Log in to the admin to "
        "edit them."
    ),
}


class Command(BaseCommand):
    help = (
        "Set up the demo site: admin user, home page and sample articles "
        "(idempotent), then show the login and the AI backends in use."
    )

    def handle(self, *args, **options):
        user_created = self.ensure_admin()
        with transaction.atomic():
            home, home_created = self.ensure_home_page()
            created = self.ensure_articles(home)
            pictures = ensure_pictures()

        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Demo site ready: {SITE_URL}"))
        self.stdout.write(
            f"  Home page: {'created' if home_created else 'already there'}; "
            f"articles: {created} created, "
            f"{len(ARTICLES) - created} already there."
        )
        self.stdout.write(
            f"  Pictures:  {pictures} created, {len(PICTURES) - pictures} already "
            "there (describe them: Images, or manage.py describe_images)."
        )
        self.stdout.write(f"  Admin:     {SITE_URL}admin/")
        self.stdout.write(f"  User:      {ADMIN_USERNAME}")
        password_note = "" if user_created else " (unless you changed it)"
        self.stdout.write(f"  Password:  {ADMIN_PASSWORD}{password_note}")
        self.stdout.write("")
        self.report_backends()
        self.update_index()

    def ensure_admin(self) -> bool:
        """Create the ``admin`` superuser unless it exists; True if created."""
        user_model = get_user_model()
        lookup = {user_model.USERNAME_FIELD: ADMIN_USERNAME}
        if user_model.objects.filter(**lookup).exists():
            return False
        user_model.objects.create_superuser(
            **lookup, email="admin@example.com", password=ADMIN_PASSWORD
        )
        return True

    def ensure_home_page(self) -> tuple[HomePage, bool]:
        """Make a ``HomePage`` the root of the default site; True if created."""
        site = Site.objects.filter(is_default_site=True).first()
        if site is None:
            site = Site.objects.first()
        if site is not None and isinstance(site.root_page.specific, HomePage):
            return site.root_page.specific, False

        root = Page.get_first_root_node()
        home = HomePage.objects.first()
        created = home is None
        if created:
            slug_taken = root.get_children().filter(slug=HOME_SLUG).exists()
            home = HomePage(
                slug=f"demo-{HOME_SLUG}" if slug_taken else HOME_SLUG, **HOME_PAGE
            )
            root.add_child(instance=home)

        old_root = site.root_page if site is not None else None
        if site is None:
            site = Site(hostname="localhost", port=80, is_default_site=True)
        site.root_page = home
        site.site_name = site.site_name or settings.WAGTAIL_SITE_NAME
        site.save()

        if old_root is not None and self.is_welcome_page(old_root):
            old_root.delete()
            if created and home.slug != HOME_SLUG:
                # The welcome page held the slug "home": the demo's page takes it.
                home.slug = HOME_SLUG
                home.save()
        if created:
            home.save_revision().publish()
        return home, created

    @staticmethod
    def is_welcome_page(page: Page) -> bool:
        """Whether ``page`` is the placeholder page of a new Wagtail project
        (a plain ``Page`` with nothing under it), which is safe to delete."""
        return page.specific_class is Page and not page.get_children().exists()

    def ensure_articles(self, home: HomePage) -> int:
        """Add the sample articles missing under ``home``; return how many."""
        existing = set(
            ArticlePage.objects.child_of(home).values_list("slug", flat=True)
        )
        created = 0
        for article in ARTICLES:
            if article["slug"] in existing:
                continue
            page = ArticlePage(**article)
            home.add_child(instance=page)
            page.save_revision().publish()
            created += 1
        return created

    def report_backends(self) -> None:
        """Say which AI backends the settings configure (no provider is called)."""
        self.stdout.write(self.style.MIGRATE_HEADING("AI backends"))
        provider = getattr(settings, "DEMO_AI_PROVIDER", "offline")
        if provider == "openai":
            self.stdout.write(
                "  OPENAI_API_KEY is set: the default backends call OpenAI "
                "through LiteLLM (requests are billed to that key)."
            )
        elif provider == "ollama":
            models = [
                backend["CONFIG"]["MODEL_ID"].split("/", 1)[-1]
                for backend in (
                    conf.get_backend_settings(conf.CHAT)["default"],
                    conf.get_backend_settings(conf.EMBEDDING)["default"],
                )
            ]
            self.stdout.write(
                "  OLLAMA_BASE_URL is set: the default backends call that Ollama "
                "server. Pull the models there first: "
                + " && ".join(f"ollama pull {model}" for model in models)
            )
        else:
            self.stdout.write(
                self.style.WARNING(
                    "  No OPENAI_API_KEY or OLLAMA_BASE_URL in .env: running on "
                    "the offline echo/hashing backends."
                )
            )
            self.stdout.write(
                "  Copy .env.example to .env and fill in one of them to use a "
                "real model (see docs/demo.md)."
            )
        rows = []
        kinds = [
            (conf.CHAT, ai.get_chat_backend),
            (conf.EMBEDDING, ai.get_embedding_backend),
        ]
        for kind, get_backend in kinds:
            for alias in conf.get_backend_settings(kind):
                try:
                    backend = get_backend(alias)
                except ImproperlyConfigured as error:
                    rows.append((kind, alias, f"cannot be used: {error}", ""))
                    continue
                rows.append((kind, alias, backend.config.model_id, self.notes(backend)))
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        for row in rows:
            cells = [
                cell.ljust(width) for cell, width in zip(row, widths, strict=False)
            ]
            line = "  " + "  ".join([*cells, row[3]]).rstrip()
            failed = row[2].startswith("cannot be used")
            self.stdout.write(self.style.ERROR(line) if failed else line)
        if any(row[2].startswith("cannot be used") for row in rows):
            self.stdout.write("  python demo/manage.py check explains what is wrong.")

    @staticmethod
    def notes(backend) -> str:
        """Where a backend sends its requests, and whether it is offline."""
        notes = []
        api_base = backend.config.default_parameters.get("api_base")
        if api_base:
            # Scheme, host and port only: a URL may carry credentials.
            parts = urlsplit(str(api_base))
            port = f":{parts.port}" if parts.port else ""
            notes.append(f"at {parts.scheme}://{parts.hostname}{port}")
        if backend.offline:
            notes.append("OFFLINE")
        return "  ".join(notes)

    def update_index(self) -> None:
        """Index the articles (unchanged ones cost nothing on later runs)."""
        from home.models import ArticlePage
        from wagtail_vector_index.exceptions import WagtailVectorIndexError

        try:
            report = ArticlePage.vector_index.update()
        except WagtailVectorIndexError as error:
            self.stdout.write(
                self.style.WARNING(f"The article index was not updated: {error}")
            )
            return
        self.stdout.write(
            f"Article index: {report.objects} articles, {report.chunks} chunks "
            f"({report.embedded} embedded now). Ask questions at {SITE_URL}ask/"
        )
