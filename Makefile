# Two commands do everything on a fresh machine with Python 3.11:
#   make demo   install into .venv, then analyse the bundled example run
#   make test   install into .venv (with test extras), then run the test suite
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test install install-test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"

# exit 1 means that a sample failed its QC: the example holds a monocytopenic septic tube that does, on purpose
demo: install
	$(BIN)/hladr run example_fcs --out results/example || test $$? -eq 1

test: install-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: install-test
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) results build dist .pytest_cache
