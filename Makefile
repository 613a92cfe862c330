# Handrail: `make demo` serves the demo on 127.0.0.1:8000; `make test` runs the whole suite.
# Both set themselves up (virtual environment, install, migrations) on a fresh machine.

SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
# The first Python 3.11+ on PATH (override: make PYTHON=/path/to/python3.12 ...).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && { echo $$p; break; }; done)
HOST ?= 127.0.0.1
PORT ?= 8000
EVENTS ?= 300
PYTEST_ARGS ?=
CHAOS_ARGS ?=

.PHONY: help venv demo test lint format chaos

help:
	@echo "make demo    serve the demo (SQLite, in-process tasks) on http://$(HOST):$(PORT)/"
	@echo "make test    run the whole test suite (PostgreSQL/Redis when DATABASE_URL/REDIS_URL are set)"
	@echo "make lint    ruff lint and format check"
	@echo "make chaos   faults under load (bench/chaos.py; its own PostgreSQL and Redis)"

venv: $(VENV)/.installed

# Reinstalled only when pyproject.toml changes (the stamp is older than it).
$(VENV)/.installed: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Handrail needs Python 3.11 or newer (set PYTHON=...)" >&2; exit 1; }
	@test -x $(BIN)/python || { echo "Creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "Installing Handrail and its test dependencies into $(VENV)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	@touch $@

demo: venv
	$(BIN)/python manage.py migrate --noinput
	VENV=$(VENV) HOST=$(HOST) PORT=$(PORT) EVENTS=$(EVENTS) bash catalog/demo/serve.sh

test: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Starts its own PostgreSQL and Redis on spare ports: DATABASE_URL and REDIS_URL play no part.
chaos: venv
	$(BIN)/python bench/chaos.py $(CHAOS_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
