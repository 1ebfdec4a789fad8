VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: venv test lint demo bench clean

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

test: $(VENV)/.installed
	$(VENV)/bin/ruff check bot handlers tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check bot handlers tests bench
	$(VENV)/bin/ruff format --check bot handlers tests bench
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) bench/report.py

demo: $(VENV)/.installed
	$(VENV)/bin/patbot demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
