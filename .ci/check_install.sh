#!/usr/bin/env bash
# Install the package in a fresh venv, the way a user would, and run a fresh
# Wagtail project outside the checkout (.ci/install_check/: APP_DIRS only, no
# DIRS or STATICFILES_DIRS): it must migrate, pass `manage.py check`, render
# Settings › AI settings and the chat test page for a superuser and find the
# package's static files.
#
#   bash .ci/check_install.sh wheel      # sdist, the wheel built from it, installed
#   bash .ci/check_install.sh editable   # pip install -e <checkout>
set -euo pipefail
mode="${1:-}"
if [ "$mode" != wheel ] && [ "$mode" != editable ]; then
    echo "usage: check_install.sh wheel|editable" >&2
    exit 2
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export LITELLM_LOCAL_MODEL_COST_MAP=True PIP_DISABLE_PIP_VERSION_CHECK=1
# pip does not byte-compile the thousands of modules the dependencies bring
# (LiteLLM most of all: that doubles the install time); each module is compiled
# when first imported instead, and kept for the next process in the work folder
# (CI sets PYTHONDONTWRITEBYTECODE; the checkout gets no __pycache__).
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="$work/pycache"

python3.11 -m venv "$work/venv"
pip=("$work/venv/bin/python" -m pip install --quiet --no-compile)  # pip's cache is kept.
case "$mode" in
    wheel)
        # hatchling in this venv rather than one build venv per build.
        "${pip[@]}" build "hatchling>=1.21"
        build=("$work/venv/bin/python" -m build --no-isolation)
        # `python -m build` makes the sdist, then the wheel from the sdist (as a
        # release does); `--wheel` builds straight from the checkout (as
        # `pip install .` does). Both wheels must hold the same files.
        "${build[@]}" --outdir "$work/dist" "$repo" >/dev/null
        "${build[@]}" --wheel --outdir "$work/direct" "$repo" >/dev/null
        wheel="$(ls "$work"/dist/*.whl)"
        list() { "$work/venv/bin/python" -m zipfile -l "$1" | awk 'NR > 1 {print $1}' | grep -v '\.dist-info/'; }
        if ! diff <(list "$wheel") <(list "$work"/direct/*.whl); then
            echo "the wheel built from the sdist differs from the one built from the checkout"
            exit 1
        fi
        echo "built $(basename "$(ls "$work"/dist/*.tar.gz)") and $(basename "$wheel") from it:"
        list "$wheel" | grep -E '^wagtail_vector_index/(templates|static)/' | sed 's/^/  /'
        "${pip[@]}" "$wheel"
        ;;
    editable)
        "${pip[@]}" -e "$repo"
        ;;
esac

cp -R "$repo/.ci/install_check" "$work/project"
cd "$work/project"  # Not the checkout: the package must come from the install.
"$work/venv/bin/python" manage.py migrate --noinput --skip-checks >/dev/null  # Checked next.
"$work/venv/bin/python" manage.py check --fail-level WARNING
"$work/venv/bin/python" check_install.py "$mode" "$repo"
echo "$mode install check passed"
