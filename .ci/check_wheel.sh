#!/usr/bin/env bash
# Build the wheel, install it in a fresh venv outside the checkout and have
# Django find a template and a static file from the installed package.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3.11 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet build
"$work/venv/bin/python" -m build --wheel --outdir "$work/dist" "$repo" >/dev/null
wheel="$(ls "$work"/dist/*.whl)"
echo "built $(basename "$wheel")"
"$work/venv/bin/python" -m zipfile -l "$wheel" | grep -E 'wagtail_vector_index/(templates|static)/' | awk '{print "  " $1}'

"$work/venv/bin/python" -m pip install --quiet "$wheel"
cd "$work"  # Not the checkout: the package must come from site-packages.
LITELLM_LOCAL_MODEL_COST_MAP=True "$work/venv/bin/python" - <<'PY'
import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=[
        "wagtail_vector_index",
        "wagtail.contrib.settings",
        "wagtail.users",
        "wagtail.images",
        "wagtail.documents",
        "wagtail.admin",
        "wagtail",
        "modelcluster",
        "taggit",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
        "django.contrib.staticfiles",
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    WAGTAILADMIN_BASE_URL="http://localhost",
    TEMPLATES=[
        {"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}
    ],
    STATIC_URL="/static/",
)
django.setup()

import wagtail_vector_index
from django.contrib.staticfiles import finders
from django.template.loader import get_template

assert "site-packages" in wagtail_vector_index.__file__, wagtail_vector_index.__file__
template = get_template("wagtail_vector_index/includes/backend_label.html")
static = finders.find("wagtail_vector_index/css/wagtail-vector-index.css")
assert static and "site-packages" in static, static
# The migrations ship too, and the app's models work from the wheel.
from django.core.management import call_command

call_command("migrate", verbosity=0)
call_command("check", fail_level="ERROR")
print("template:", template.origin.name)
print("static:  ", static)
PY
echo "wheel check passed"
