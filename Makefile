# Two commands on a fresh machine: `make demo` (or `make serve`) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve demo simulate test lint format lock bench refresh-catalogue clean

$(STAMP): requirements-dev.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/1min-relay serve

demo: $(STAMP)
	$(BIN)/1min-relay demo

simulate: $(STAMP)
	$(BIN)/1min-relay simulate

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# Regenerate the hashed lock files after changing dependencies in pyproject.toml (needs `uv`).
lock:
	uv pip compile pyproject.toml --generate-hashes --no-emit-index-url --no-header --python-version 3.11 -o requirements.lock
	uv pip compile pyproject.toml --group dev --generate-hashes --no-emit-index-url --no-header --python-version 3.11 -o requirements-dev.lock

# Rewrite the shipped model catalogue snapshot from the live service (ONEMIN_API_URL; no key needed).
refresh-catalogue: $(STAMP)
	$(BIN)/1min-relay refresh-catalogue --output src/onemin_relay/data/catalogue.json

bench: $(STAMP)
	$(BIN)/python bench/relay_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
