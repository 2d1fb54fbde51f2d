# Two commands for a newcomer: `make demo` (the main job) and `make test` (the whole suite).
# Each creates or refreshes the project-local virtualenv .venv by itself.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__DAGS_FOLDER ?= $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER ?= $(CURDIR)/plugins
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False

.PHONY: venv demo test lint airflow lock clean

# The venv is rebuilt only when the lock or the project metadata changes.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(BIN)/uv pip install --quiet --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/uv pip check --python $(BIN)/python
	touch $(STAMP)

venv: $(STAMP)

## The demo portfolio through the whole pipeline (embedded Postgres, paper broker, auto approval).
demo: $(STAMP)
	$(BIN)/rebalance demo

## The whole test suite.
test: $(STAMP)
	$(BIN)/pytest

## ruff + mypy, as CI would.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## The full local Airflow (api-server, scheduler, dag-processor, triggerer) on http://localhost:8080.
airflow: $(STAMP)
	$(BIN)/rebalance airflow

## Regenerate the lock (requirements.txt) from requirements.in.
lock:
	$(BIN)/uv pip compile requirements.in -o requirements.txt --python-version 3.11 --quiet

clean:
	rm -rf $(VENV) .airflow .state .pytest_cache .mypy_cache .ruff_cache
