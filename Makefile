VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Two install stamps: `make demo` needs the runtime only; `make test`, `lint` and `bench` add the dev extras.
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev

.PHONY: venv test lint demo bench clean check-python

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "patbot needs Python 3.11 or newer; '$(PYTHON)' is not. Run e.g. 'make demo PYTHON=python3.12'." >&2; \
	  exit 1; }

$(PY):
	@$(MAKE) --no-print-directory check-python PYTHON=$(PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(RUNTIME): pyproject.toml | $(PY)
	$(PIP) install -q -e .
	touch $@

$(DEV): pyproject.toml $(RUNTIME)
	$(PIP) install -q -e '.[dev]'
	touch $@

venv: $(DEV)

test: $(DEV)
	$(VENV)/bin/ruff check bot handlers entrypoints tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

lint: $(DEV)
	$(VENV)/bin/ruff check bot handlers entrypoints tests bench
	$(VENV)/bin/ruff format --check bot handlers entrypoints tests bench
	$(VENV)/bin/mypy

bench: $(DEV)
	$(PY) bench/report.py

demo: $(RUNTIME)
	$(VENV)/bin/patbot demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
