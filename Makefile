# cxpulse: the project's vocabulary. Every target installs what it needs into .venv first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install tools demo test lint bench broker clean

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

# Debian tools the tests use, as tool:package. A missing one is installed with apt-get (through
# sudo when not root), saying so first; if that fails, the tests that need it are skipped and
# say why (SKIP_PROMTOOL=1 for promtool; the TLS tests need stunnel4, the proxy in
# front of the embedded broker).
DEB_TOOLS := promtool:prometheus stunnel4:stunnel4

tools:  ## install the Debian tools the tests use (apt-get, sudo when not root)
	@for pair in $(DEB_TOOLS); do tool=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$tool >/dev/null && continue; \
	  s=; [ "$$(id -u)" = 0 ] || s=sudo; \
	  echo "make: $$tool is missing; installing the Debian package $$pkg: $$s apt-get install $$pkg"; \
	  apt="$$s env DEBIAN_FRONTEND=noninteractive apt-get -y -q --no-install-recommends"; \
	  $$apt install $$pkg >/dev/null 2>&1 \
	    || { $$s apt-get update -q >/dev/null 2>&1 && $$apt install $$pkg >/dev/null 2>&1; } \
	    || echo "make: could not install $$pkg; the tests that need $$tool will be skipped"; \
	done

test: $(STAMP) tools  ## lint, type-check and run the whole suite (real broker included)
	$(BIN)/ruff check streams agents schemas tests benchmarks
	$(BIN)/mypy
	if command -v promtool >/dev/null; then $(BIN)/pytest -q; else SKIP_PROMTOOL=1 $(BIN)/pytest -q; fi

lint: $(STAMP)  ## ruff + mypy only
	$(BIN)/ruff check streams agents schemas tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)  ## throughput benchmark (writes benchmarks/results.json)
	$(BIN)/cxpulse bench

broker: $(STAMP)  ## the embedded Kafka-compatible broker alone
	$(BIN)/cxpulse broker

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache cxpulse-data
