"""Run by .ci/check_install.sh inside the throwaway project, after migrate and
check: ``python check_install.py wheel|editable CHECKOUT``.

Proves that the installed package (from site-packages for a wheel, from the
checkout for an editable install) serves its admin pages and static files to a
project that finds templates by ``APP_DIRS`` alone and static files by the
default finders: a logged-in superuser opens Settings › AI settings and the
chat test page, and ``finders.find`` locates the package's CSS and JavaScript.
"""

import os
import sys
import sysconfig
from pathlib import Path
from typing import NoReturn

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
django.setup()

from django.apps import apps  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.staticfiles import finders  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402
from wagtail.models import Site  # noqa: E402

STATIC_FILES = [
    "wagtail_vector_index/css/wagtail-vector-index.css",
    "wagtail_vector_index/js/chat-controller.js",
]


def fail(message: str) -> NoReturn:
    raise SystemExit(f"install check failed: {message}")


def check_project_settings() -> None:
    """The project must not find the package's files by any other way."""
    for engine in settings.TEMPLATES:
        if engine.get("DIRS") or not engine.get("APP_DIRS"):
            fail(f"the project's TEMPLATES must use APP_DIRS alone: {engine}")
    if getattr(settings, "STATICFILES_DIRS", None):
        fail("the project must not set STATICFILES_DIRS")


def check_package_location(mode: str, checkout: Path) -> Path:
    """The app's folder as Django sees it (``AppConfig.path``), checked to be
    where the install mode puts it."""
    app_path = Path(apps.get_app_config("wagtail_vector_index").path)
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    if mode == "wheel":
        if not app_path.resolve().is_relative_to(site_packages):
            fail(f"the package was imported from {app_path}, not {site_packages}")
    elif app_path.resolve() != (checkout / "wagtail_vector_index").resolve():
        fail(f"the package was imported from {app_path}, not the checkout")
    return app_path


def check_pages(app_path: Path) -> None:
    setup_test_environment()  # The test client records the templates rendered.
    user = get_user_model().objects.create_superuser(
        "admin", "admin@example.com", "install-check"
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    site = Site.objects.get(is_default_site=True)
    pages = [
        (
            "Settings › AI settings",
            reverse(
                "wagtailsettings:edit",
                args=["wagtail_vector_index", "aisettings", site.pk],
            ),
            "wagtail_vector_index/panels/parameter_overrides.html",
        ),
        (
            "AI › Chat test",
            reverse("wagtail_vector_index:chat"),
            "wagtail_vector_index/admin/chat.html",
        ),
    ]
    for title, url, template_name in pages:
        try:
            response = client.get(url)
        except Exception as error:  # TemplateDoesNotExist above all: say so briefly.
            fail(f"{title} ({url}) raised {error.__class__.__name__}: {error}")
        if response.status_code != 200:
            fail(f"{title} ({url}) answered {response.status_code}")
        origins = {t.name: t.origin.name for t in response.templates if t.name}
        origin = origins.get(template_name)
        if origin is None:
            fail(f"{title} ({url}) did not render {template_name}")
        if not Path(origin).is_relative_to(app_path / "templates"):
            fail(f"{template_name} came from {origin}, not the package")
        print(f"{title}: {url} 200, {template_name} from {origin}")


def check_static_files(app_path: Path) -> None:
    for name in STATIC_FILES:
        found = finders.find(name)
        if not found:
            fail(f"the static finders do not find {name}")
        if not Path(found).is_relative_to(app_path / "static"):
            fail(f"{name} found at {found}, not in the package")
        print(f"static {name}: {found}")


def main() -> None:
    mode, checkout = sys.argv[1], Path(sys.argv[2])
    if mode not in ("wheel", "editable"):
        fail(f"unknown install mode {mode!r}")
    check_project_settings()
    app_path = check_package_location(mode, checkout)
    print(f"{mode}: wagtail_vector_index from {app_path}")
    check_pages(app_path)
    check_static_files(app_path)


if __name__ == "__main__":
    main()
