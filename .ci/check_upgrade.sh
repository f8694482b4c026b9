#!/usr/bin/env bash
# Upgrade from wagtail-vector-index 0.10.0 with `pip install -U` and `migrate`.
#
# In a temporary folder outside the checkout: a venv with 0.10.0 from the
# package registry (its declared litellm==1.40.15 is not on the registry, and
# a site configured with 0.10.0's offline backends never imports LiteLLM, so
# it is installed with --no-deps over Django, Wagtail, NumPy and its pgvector
# extra (pgvector, psycopg), as benchmarks/run.py does); a small Wagtail site
# using it (0.10.0's pgvector app in INSTALLED_APPS, on SQLite, as its docs
# show) is migrated and its index built by 0.10.0's own
# update_vector_indexes. Then this checkout is installed over it with
# `pip install -U`, as a site upgrades, and:
#   1. `migrate` runs with 0.10.0's settings still in place (its system
#      checks report them as warnings W005-W007, which do not stop it);
#   2. with the settings docs/upgrading.md gives, `check` passes with no
#      warning, the site's own migrations are unchanged, update_vector_indexes
#      builds the index (offline hashing backend) and a search finds the page.
# Pins: what the checkout's .venv runs, when it exists (so pip never walks
# through LiteLLM releases). Usage: .ci/check_upgrade.sh [python]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${1:-python3.11}"
export LITELLM_LOCAL_MODEL_COST_MAP=True
export PIP_DISABLE_PIP_VERSION_CHECK=1
# Packages are installed without compiling every module (--no-compile, a
# third of the install time); the site's processes write the bytecode of
# what they import into the throwaway venv.
unset PYTHONDONTWRITEBYTECODE

work="$(mktemp -d "${TMPDIR:-/tmp}/wvi-upgrade.XXXXXX")"
# Removing some 20,000 files takes half a minute: in the background.
trap 'rm -rf "$work" &' EXIT
site="$work/site"
venv="$work/venv"
mkdir -p "$site/blog/migrations"

fail() { echo "check_upgrade: $*" >&2; exit 1; }
# Mirrors of the registry that are not configured here print noise.
pip() {
    local status=0
    "$venv/bin/python" -m pip --quiet "$@" --no-compile > "$work/pip.log" 2>&1 || status=$?
    grep -v "is ignored: it is neither" "$work/pip.log" || true
    [ "$status" = 0 ] || fail "pip $* failed"
}
manage() { (cd "$site" && "$venv/bin/python" manage.py "$@"); }
started=$SECONDS
stage() { echo "--- $* ($((SECONDS - started)) s)"; }

constraints="$work/constraints.txt"
if [ -x "$repo/.venv/bin/python" ]; then
    "$repo/.venv/bin/python" -m pip freeze --exclude-editable 2>/dev/null \
        | grep -iv '^wagtail[-_]vector[-_]index' > "$constraints"
else
    : > "$constraints"
fi

stage "wagtail-vector-index 0.10.0 from the package registry"
"$python" -m venv "$venv"
pip install -c "$constraints" Django wagtail numpy pgvector "psycopg[binary]"
pip install --no-deps "wagtail-vector-index==0.10.0"
version() {
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("wagtail-vector-index"))'
}
[ "$(version)" = 0.10.0 ] || fail "0.10.0 is not installed"

# -- the site ----------------------------------------------------------------
cat > "$site/manage.py" <<'EOF'
import os
import sys

from django.core.management import execute_from_command_line

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
execute_from_command_line(sys.argv)
EOF
# WVI_SETTINGS: "0.10.0" (the site as it ran), "kept" (upgraded, 0.10.0's
# leftovers still there) or "upgraded" (as docs/upgrading.md says).
cat > "$site/settings.py" <<'EOF'
import os
from pathlib import Path

STAGE = os.environ["WVI_SETTINGS"]
SECRET_KEY = "check-upgrade-not-secret"
DEBUG = False
INSTALLED_APPS = [
    "blog",
    "wagtail_vector_index",
    "wagtail.users",
    "wagtail.documents",
    "wagtail.images",
    "wagtail.admin",
    "wagtail",
    "modelcluster",
    "taggit",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": Path(__file__).resolve().parent / "db.sqlite3",
    }
}
STATIC_URL = "/static/"
USE_TZ = True
WAGTAIL_SITE_NAME = "Upgrade check"
WAGTAILADMIN_BASE_URL = "http://localhost"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

# This version needs wagtail.contrib.settings (its AI settings are a site
# setting); 0.10.0 did not. Without it, check and migrate stop with E033.
if STAGE != "0.10.0" and not os.environ.get("WVI_WITHOUT_SETTINGS_APP"):
    INSTALLED_APPS.insert(2, "wagtail.contrib.settings")

OLD = "wagtail_vector_index.ai_utils.backends.echo"
if STAGE == "0.10.0":
    # 0.10.0's offline backends (random vectors): no provider, no LiteLLM.
    WAGTAIL_VECTOR_INDEX = {
        "CHAT_BACKENDS": {
            "default": {
                "CLASS": f"{OLD}.EchoChatBackend",
                "CONFIG": {"MODEL_ID": "echo", "TOKEN_LIMIT": 1024},
            }
        },
        "EMBEDDING_BACKENDS": {
            "default": {
                "CLASS": f"{OLD}.EchoEmbeddingBackend",
                "CONFIG": {
                    "MODEL_ID": "echo",
                    "TOKEN_LIMIT": 1024,
                    "EMBEDDING_OUTPUT_DIMENSIONS": 16,
                },
            }
        },
    }
else:
    # The documented import paths of this version's offline backends.
    WAGTAIL_VECTOR_INDEX = {
        "CHAT_BACKENDS": {
            "default": {"CLASS": f"{OLD}.EchoChatBackend", "CONFIG": {}}
        },
        "EMBEDDING_BACKENDS": {
            "default": {"CLASS": f"{OLD}.HashingEmbeddingBackend", "CONFIG": {}}
        },
    }
if STAGE in ("0.10.0", "kept"):
    INSTALLED_APPS.insert(2, "wagtail_vector_index.storage.pgvector")
    WAGTAIL_VECTOR_INDEX_STORAGE_PROVIDERS = {
        "default": {
            "STORAGE_PROVIDER": "wagtail_vector_index.storage.numpy."
            "NumpyStorageProvider"
        }
    }
    WAGTAIL_VECTOR_INDEX_QUERY_PROMPT = "You are a helpful assistant."
EOF
touch "$site/blog/__init__.py" "$site/blog/migrations/__init__.py"
# 0.10.0's documented import path; upgraded, the guide's.
cat > "$site/blog/models.py" <<'EOF'
from django.db import models
from wagtail.models import Page
from wagtail_vector_index.storage.models import EmbeddingField, VectorIndexedMixin


class BlogPage(VectorIndexedMixin, Page):
    body = models.TextField()

    embedding_fields = [EmbeddingField("title", important=True), EmbeddingField("body")]
EOF

stage "0.10.0: migrate, pages, update_vector_indexes"
export WVI_SETTINGS=0.10.0
manage makemigrations blog -v 0
manage migrate --noinput -v 0
manage shell -v 0 -c '
from wagtail.models import Page
from blog.models import BlogPage
home = Page.get_first_root_node().get_children().first()
for title, body in [
    ("Growing tomatoes", "Tomatoes need sun, water and rich soil in the garden."),
    ("Watching stars", "A telescope shows planets, stars and galaxies at night."),
    ("Baking bread", "Flour, water, yeast and salt make bread in a hot oven."),
]:
    home.add_child(instance=BlogPage(title=title, body=body))
'
manage update_vector_indexes --noinput
rows="$(manage shell -v 0 -c '
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT COUNT(*) FROM wagtail_vector_index_embedding")
    print(cursor.fetchone()[0])
')"
[ "$rows" -gt 0 ] || fail "0.10.0 stored no embeddings"
echo "0.10.0 stored $rows embeddings"

stage "pip install -U this checkout"
pip install -c "$constraints" -U "$repo"
echo "wagtail-vector-index $(version)"
[ "$(version)" != 0.10.0 ] || fail "still 0.10.0"
[ ! -e "$("$venv/bin/python" -c 'import wagtail_vector_index as w, os; print(os.path.dirname(w.__file__))')/storage/numpy" ] \
    || fail "0.10.0's files were left behind"

stage "upgraded, 0.10.0's settings still in place: migrate"
export WVI_SETTINGS=kept
# The one new requirement is an error that says what to add.
if WVI_WITHOUT_SETTINGS_APP=1 manage migrate --noinput > "$work/refused.log" 2>&1; then
    fail "migrate ran without wagtail.contrib.settings"
fi
grep -q "wagtail_vector_index.E033" "$work/refused.log" \
    || { cat "$work/refused.log"; fail "E033 not reported"; }
# migrate runs the system checks first: the leftovers are warnings, reported.
manage migrate --noinput 2>&1 | tee "$work/migrate.log"
for id in W005 W006 W007; do
    grep -q "wagtail_vector_index.$id" "$work/migrate.log" || fail "$id not reported"
done
grep -q "Applying pgvector.0003_remove_0_10_table... OK" "$work/migrate.log" \
    || fail "0.10.0's pgvector table was not dropped"
grep -q "Applying wagtail_vector_index.0002_replace_0_10_tables... OK" "$work/migrate.log" \
    || fail "0.10.0's tables were not replaced"

stage "upgraded as docs/upgrading.md says: check, update_vector_indexes, search"
export WVI_SETTINGS=upgraded
sed -i 's/wagtail_vector_index.storage.models import/wagtail_vector_index.index import/' \
    "$site/blog/models.py"
manage check --fail-level WARNING
manage makemigrations --check --dry-run
manage migrate --check
manage update_vector_indexes --noinput
manage shell -v 0 -c '
from django.db import connection
from blog.models import BlogPage

tables = set(connection.introspection.table_names())
left = {"wagtail_vector_index_embedding", "pgvector_pgvectorembedding"} & tables
assert not left, f"0.10.0 tables left: {left}"
found = [page.title for page in BlogPage.vector_index.search("telescope at night", limit=1)]
print("search:", found)
assert found == ["Watching stars"], found
answer = BlogPage.vector_index.query("How do I bake bread?", sources_limit=1)
print("query sources:", [page.title for page in answer.sources])
assert [page.title for page in answer.sources] == ["Baking bread"]
'
stage "upgrade from 0.10.0: OK"
