# Convenience targets; the README's two commands are the reference and need no make.
PY ?= python3
VENV ?= .venv

.PHONY: demo test test-slow lint format bench

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)

demo: $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -q -e . && $(VENV)/bin/operando demo

test: $(VENV)/bin/python
	$(VENV)/bin/python -m pip install -q -e ".[test]" && $(VENV)/bin/python -m pytest -n auto

test-slow: $(VENV)/bin/python
	$(VENV)/bin/python -m pytest -n auto -m slow

lint:
	$(VENV)/bin/ruff check src tests benchmarks && $(VENV)/bin/ruff format --check src tests benchmarks

format:
	$(VENV)/bin/ruff format src tests benchmarks && $(VENV)/bin/ruff check --fix src tests benchmarks
