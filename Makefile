# cxpulse: the project's vocabulary. Every target installs what it needs into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo test lint bench broker clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' Makefile | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install cxpulse with its dev tools

demo: $(STAMP)  ## embedded broker + worker + synthetic traffic + live KPI view
	$(BIN)/cxpulse demo

test: $(STAMP)  ## lint, type-check and run the whole suite (real broker included)
	$(BIN)/ruff check streams agents schemas tests benchmarks
	$(BIN)/mypy
	$(BIN)/pytest -q

lint: $(STAMP)  ## ruff + mypy only
	$(BIN)/ruff check streams agents schemas tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)  ## throughput benchmark (writes benchmarks/results.json)
	$(BIN)/cxpulse bench

broker: $(STAMP)  ## the embedded Kafka-compatible broker alone
	$(BIN)/cxpulse broker

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache cxpulse-data
