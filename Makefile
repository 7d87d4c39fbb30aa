# The two commands: `make run` serves the app, `make test` checks it.
# Both create .venv and install requirements-dev.lock on first use.
SHELL := /bin/bash
# Debian puts nginx and pgbouncer in /usr/sbin, which a user's PATH may not hold.
export PATH := $(PATH):/usr/sbin:/usr/local/sbin
PYTHON ?= python3
# Set but blank is the default, as every variable (make's ?= keeps a blank one).
ifeq ($(strip $(PYTHON)),)
PYTHON := python3
endif
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: run test lint format lock schema bench bench-smoke db-start db-stop db-status db-destroy clean help

help:
	@echo "make run      serve the app on http://127.0.0.1:8000 (local PostgreSQL unless DATABASE_URL)"
	@echo "make test     ruff + the whole test suite against a throwaway PostgreSQL"
	@echo "make lint     ruff check and format check only"
	@echo "make format   ruff format and fix"
	@echo "make lock     regenerate requirements*.lock from pyproject.toml"
	@echo "make schema   regenerate openapi.yaml and docs/api.md's error table from the code"
	@echo "make bench    load benchmark, report in bench/results/ (about 25 minutes)"
	@echo "make bench-smoke  the short benchmark make test runs (about a minute)"
	@echo "make db-start|db-stop|db-status|db-destroy   the local PostgreSQL of make run"
	@echo "make clean    remove .venv and caches (the database stays)"

$(INSTALLED): requirements-dev.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "Could not create a virtualenv: install Python 3.11+ with venv (Debian: apt-get install python3-venv)"; exit 1; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	@touch $@

run: $(INSTALLED)
	@scripts/run.sh

test: $(INSTALLED)
	@scripts/test.sh $(ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

lock: $(INSTALLED)
	$(BIN)/python scripts/lock.py

db-start:
	@scripts/pg.sh start
db-stop:
	@scripts/pg.sh stop
# A stopped cluster is an answer, not a failure (scripts/pg.sh status exits 3 for it,
# as pg_ctl does, for scripts that ask it directly).
db-status:
	@scripts/pg.sh status || test $$? -eq 3
db-destroy:
	@scripts/pg.sh destroy

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis staticfiles test-artifacts
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

schema: $(INSTALLED)
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file openapi.yaml
	$(BIN)/python manage.py error_table
	@echo "openapi.yaml and the error table of docs/api.md regenerated"

bench: $(INSTALLED)
	@scripts/ensure-package.sh wrk wrk
	@scripts/ensure-package.sh nginx nginx
	@scripts/ensure-package.sh pgbouncer pgbouncer
	$(BIN)/python bench/run.py

bench-smoke: $(INSTALLED)
	@scripts/ensure-package.sh wrk wrk
	@scripts/ensure-package.sh nginx nginx
	@scripts/ensure-package.sh pgbouncer pgbouncer
	$(BIN)/python bench/run.py --smoke
