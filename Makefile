# The two commands of the README (run, test) and the tooling around them.
PY ?= python3.11
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: run test install install-test lint bench clean

$(BIN)/python:
	$(shell command -v $(PY) || echo python3) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt

install-test: $(BIN)/python
	$(BIN)/pip install -q -r requirements-test.txt

## Install and serve the dashboard on embedded defaults (SQLite, in-process cache, demo city).
run: install
	$(BIN)/python app.py

## Install and run the whole test suite.
# Bytecode is written even where PYTHONDONTWRITEBYTECODE is set: the suite starts some thirty app processes
# (servers, workers) and three test workers, each of which would compile every module again.
test: install-test
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n auto --dist loadfile --no-loadscope-reorder

lint: install-test
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: install-test
	for b in tests/bench/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .hypothesis
