# Set-up commands for a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export LITELLM_LOCAL_MODEL_COST_MAP := True

.PHONY: demo test test-unit lint install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstalled whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test,demo]"
	touch $@

install: $(VENV)/.installed

## Run the whole test suite.
test: install
	$(BIN)/python -m pytest
	$(BIN)/python tests/manage.py makemigrations --check --dry-run

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
bench: install
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info
