# The few commands a newcomer needs. Each sets up .venv first (once).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup upgrade test lint check-models bench bench-online clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,local,deploy]'
	touch $(STAMP)

setup: $(STAMP)  ## create .venv with the package (editable) and the dev tools

upgrade: $(STAMP)  ## start (or reuse) the local PostgreSQL and upgrade it to head
	$(BIN)/alquimista-schema upgrade head

test: $(STAMP)  ## run the test suite against a throwaway PostgreSQL
	$(BIN)/python -m pytest

lint: $(STAMP)  ## ruff, mypy, and the layer rules (import-linter contracts in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

check-models: $(STAMP)  ## do the models match the revisions? (uses the local database)
	$(BIN)/alquimista-schema upgrade head
	$(BIN)/alquimista-schema check

bench: $(STAMP)  ## benchmarks (ratios against baselines, same run): bench/results/latest.json
	$(BIN)/python bench/run.py

bench-online: $(STAMP)  ## online safety: 1,000,000 rows, a concurrent writer, its longest stall
	$(BIN)/python bench/online_safety.py

clean:  ## remove .venv and caches (the local database stays: alquimista-schema dev-db remove)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info
