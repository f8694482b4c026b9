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

from home.models import ArticlePage, HomePage
from wagtail_vector_index import ai, conf

SITE_URL = "http://127.0.0.1:8000/"
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD = "admin"
HOME_SLUG = "home"

HOME_PAGE = {
    "title": "Welcome to the wagtail_vector_index demo",
    "intro": (
        "A few articles on unrelated subjects (gardening, the night sky, "
        "cooking, cycling) to try chat and embeddings on. Log in to the admin "
        "to edit them."
    ),
}

ARTICLES = [
    {
        "slug": "tomatoes-on-a-balcony",
        "title": "Growing tomatoes on a balcony",
        "intro": "Six hours of sun, a big pot and steady watering are most of it.",
        "body": (
            "<p>Tomatoes are one of the most rewarding crops for a balcony. A "
            "single plant in a 30-litre pot can keep you in fruit from July "
            "until the first cold nights of autumn.</p>"
            "<p>Choose the variety for the space. Bush (determinate) tomatoes "
            "and most cherry tomatoes stay compact and need little pruning; "
            "cordon varieties grow tall and want a cane, with the side shoots "
            "pinched out every week so the plant puts its energy into "
            "fruit.</p>"
            "<p>Give them at least six hours of direct sun, ideally on a south "
            "or west facing balcony. Water deeply and regularly: a pot that "
            "swings between dust-dry and soaked gives split fruit and blossom "
            "end rot. Once the first flowers have set, feed every week with a "
            "high-potassium tomato feed.</p>"
            "<p>Balconies are windy. Tie the stem loosely to its stake with "
            "soft string as it grows, and move the pot against a wall if a "
            "storm is forecast.</p>"
        ),
    },
    {
        "slug": "a-compost-heap-that-works",
        "title": "A compost heap that works",
        "intro": "Balance greens and browns, add air, and wait.",
        "body": (
            "<p>Compost is what happens when bacteria, fungi and worms are "
            "given the right mix of food, air and water. Your job is only to "
            "keep that mix right.</p>"
            "<p>Mix roughly equal volumes of greens and browns. Greens are "
            "wet and rich in nitrogen: vegetable peelings, grass clippings, "
            "coffee grounds. Browns are dry and rich in carbon: torn "
            "cardboard, autumn leaves, straw and woody prunings cut small.</p>"
            "<p>A heap that smells sour or slimy has too many greens and too "
            "little air: add browns and turn it with a fork. A heap that stays "
            "dry and cold needs water and more greens. Turning it every few "
            "weeks speeds everything up.</p>"
            "<p>After six months to a year the bottom of the heap is dark, "
            "crumbly and smells of a forest floor. Spread it on the beds in "
            "spring. Keep meat, dairy and cooked food out of an open heap, or "
            "the rats will find it before the worms do.</p>"
        ),
    },
    {
        "slug": "watching-the-perseids",
        "title": "Watching the Perseid meteor shower",
        "intro": "Every August the Earth crosses the dust of comet Swift-Tuttle.",
        "body": (
            "<p>The Perseids are the most reliable meteor shower of the "
            "northern summer. From mid-July to late August the Earth passes "
            "through the trail of dust left by comet Swift-Tuttle, and the "
            "grains burn up high in the atmosphere as streaks of light.</p>"
            "<p>The shower peaks around the 12th and 13th of August. Under a "
            "truly dark sky an observer can see fifty or more meteors an hour "
            "at the peak, fewer from town or when a bright Moon is up. The "
            "best hours are after midnight, when the radiant in the "
            "constellation Perseus climbs high in the north-east.</p>"
            "<p>You need no telescope or binoculars: they show too little sky. "
            "Lie back on a reclining chair, look about halfway up, and give "
            "your eyes twenty to thirty minutes to adapt to the dark. Every "
            "glance at a phone screen undoes that, so use a red torch and dress "
            "warmly: even August nights get cold when you keep still.</p>"
        ),
    },
    {
        "slug": "weeknight-mushroom-risotto",
        "title": "A weeknight mushroom risotto",
        "intro": "Twenty minutes of stirring for a dish that tastes of much more.",
        "body": (
            "<p>Risotto is less work than its reputation. What it asks for is "
            "attention for about twenty minutes, and a pot of hot stock on the "
            "next burner.</p>"
            "<p>Soften a finely chopped onion in butter and olive oil without "
            "letting it colour. Add the rice, arborio or carnaroli, about 80 "
            "grams a person, and stir for a minute or two until the grains "
            "turn translucent at the edges. Pour in a splash of dry white wine "
            "and let it bubble away.</p>"
            "<p>Now add the hot stock a ladle at a time, stirring often and "
            "waiting until each ladle is almost absorbed before the next. The "
            "stirring rubs starch from the grains, and that starch is what "
            "makes the risotto creamy without any cream.</p>"
            "<p>Meanwhile fry sliced mushrooms in a hot, wide pan in batches "
            "so they brown instead of stewing, with garlic and thyme at the "
            "end. After 16 to 18 minutes the rice should be tender with a "
            "little bite. Take it off the heat, stir in the mushrooms, a knob "
            "of cold butter and a handful of grated Parmesan, cover and rest "
            "for two minutes. It should flow slowly across the plate.</p>"
        ),
    },
    {
        "slug": "cycling-to-work-in-winter",
        "title": "Cycling to work through the winter",
        "intro": "Lights, mudguards and a little more time to stop.",
        "body": (
            "<p>Commuting by bike does not have to end when the clocks go "
            "back. Most winter riding is simply riding in the dark and the "
            "wet, and both are easy to prepare for.</p>"
            "<p>Fit a white light at the front and a red one at the back, and "
            "keep them charged: you will ride home in the dark for months. "
            "Full mudguards keep road spray off your back and your feet, and "
            "off the chain.</p>"
            "<p>Dress in layers you can open as you warm up: a windproof "
            "jacket, proper gloves and something over your ears matter more "
            "than a thick coat. Let a little air out of the tyres for more "
            "grip on wet roads, and treat painted lines, metal covers and wet "
            "leaves as if they were ice.</p>"
            "<p>Brakes work less well in the rain, rim brakes especially, so "
            "start braking earlier. After a ride on salted roads, rinse the "
            "bike and oil the chain, or it will rust within a week.</p>"
        ),
    },
    {
        "slug": "fixing-a-puncture",
        "title": "Fixing a puncture at the roadside",
        "intro": "Find what caused it before you fit the new inner tube.",
        "body": (
            "<p>A flat tyre is the most common repair on a bike and takes ten "
            "minutes once you have done it a few times. Carry two tyre "
            "levers, a spare inner tube or a patch kit, and a pump.</p>"
            "<p>Take the wheel out and let all the air out of the tube. Hook a "
            "tyre lever under the edge of the tyre, lever it over the rim, and "
            "run the second lever around until one side of the tyre is off. "
            "Pull out the tube, valve last.</p>"
            "<p>Before anything else, find the cause. Run your fingers slowly "
            "around the inside of the tyre to find the thorn or the sliver of "
            "glass that is still there; if you miss it, the new tube will go "
            "flat within a mile.</p>"
            "<p>Put a little air in the new tube so it holds its shape, push "
            "the valve through the rim and tuck the tube into the tyre. Work "
            "the tyre back onto the rim with your thumbs rather than the "
            "levers, which can pinch the tube. Check that the tube is not "
            "caught under the tyre anywhere, then pump it up to the pressure "
            "printed on the sidewall.</p>"
        ),
    },
]


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

        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Demo site ready: {SITE_URL}"))
        self.stdout.write(
            f"  Home page: {'created' if home_created else 'already there'}; "
            f"articles: {created} created, "
            f"{len(ARTICLES) - created} already there."
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
