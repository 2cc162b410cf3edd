# Set-up and the two jobs of the README: `make demo` and `make test`.
# Everything installs from this repository's own files into .venv (and node_modules for Azurite).
PYTHON ?= python3
VENV   ?= .venv
DIR    ?= orbit-demo
BIN    := $(VENV)/bin

.PHONY: demo demo-azure test install install-test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Create the demo workspace in $(DIR) (if absent) and open the console on it.
demo: install
	$(BIN)/orbit demo $(DIR)

## The demo on the Azure backend over the test suite's emulators (Azurite + HTTPS ARM/ACR/Files on 127.0.0.1),
## from this checkout (decision 0018); the emulated cloud lives as long as the console.
AZURE_DIR ?= orbit-azure-demo
demo-azure: install-test node_modules/.installed
	$(BIN)/orbit demo --backend azure-emulated $(AZURE_DIR)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## Install the test dependencies (Python packages, and Azurite from npm) and run the whole test suite,
## one pytest-xdist worker per core (decision 0054); `make test TEST_WORKERS=0` runs it in one process.
TEST_WORKERS ?= auto
test: install-test node_modules/.installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

lint: install-test
	$(BIN)/ruff check orbit_ops orbit_cli orbit_tui tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/run_all.py
