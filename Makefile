# Kirjuri: `make run` serves on the embedded store under ./var; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch 2.13.0 first: the CPU build (pip takes it from this machine's disk); a bare `torch`
# would pull a CUDA build of several GB for the openai-whisper backend's tests
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[dev,openai-whisper]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/kirjuri serve

# the whole suite twice: on the embedded SQLite store, then on a PostgreSQL server the tests
# start themselves (tests/postgres.py; needs Debian's postgresql package)
test: $(STAMP)
	$(BIN)/pytest
	KIRJURI_TEST_DATABASE=postgresql $(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/smtp_ingest.py
	$(BIN)/python bench/transcribe.py
	$(BIN)/python bench/rights.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
