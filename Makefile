# Two commands do everything on a fresh machine with Python 3.11:
#   make demo   install into .venv, then analyse the bundled example run
#   make test   install into .venv (with test extras), then run the test suite
# and one validates the installation a lab reports from:
#   make validate   install the built wheel (not editable: its files are fixed and listed) into .venv,
#                   then hladr validate --out validation/<date-time>
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test install install-test validate lint bench clean

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

# pip builds the wheel (hatch_build.py writes the SHA-256 list of its files) and replaces an editable install
validate: $(BIN)/python
	$(BIN)/python -m pip install --quiet .
	$(BIN)/hladr validate --out validation/$$(date -u +%Y%m%d-%H%M%S)

bench: install-test
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) results build dist .pytest_cache
