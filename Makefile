# cxpulse: the project's vocabulary. Every target installs what it needs into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help demo test lint bench broker clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' Makefile | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	@# mypy cannot follow the editable install's import hook: the same names, as links
	mkdir -p $(VENV)/typecheck/cxpulse
	for d in streams agents schemas; do ln -sfn ../../../$$d $(VENV)/typecheck/cxpulse/$$d; done
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install cxpulse with its dev tools

demo: $(STAMP)  ## embedded broker + worker + synthetic traffic + live KPI view
	$(BIN)/cxpulse demo

test: $(STAMP)  ## lint, type-check and run the whole suite (real broker included)
	@# promtool (Debian package prometheus) for tests/deploy; as root, else through sudo
	@command -v promtool >/dev/null || { s=; [ "$$(id -u)" = 0 ] || s=sudo; \
	  apt="$$s env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends"; \
	  $$apt install prometheus >/dev/null 2>&1 || { $$s apt-get update -q >/dev/null && $$apt install prometheus >/dev/null; }; }
	@# stunnel4: the TLS proxy of tests/integration/test_tls.py (skipped, saying so, without it)
	@command -v stunnel4 >/dev/null || { s=; [ "$$(id -u)" = 0 ] || s=sudo; \
	  apt="$$s env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends"; \
	  $$apt install stunnel4 >/dev/null 2>&1 || { $$s apt-get update -q >/dev/null && $$apt install stunnel4 >/dev/null; } || true; }
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
