# Two commands on a fresh machine: `make demo` (or `make serve`) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/node/node_modules/.installed

.PHONY: install serve demo simulate test lint format lock bench refresh-catalogue clean

$(STAMP): requirements-dev.lock pyproject.toml
	@echo "Installing 1min-relay and its dependencies into $(VENV) (first run, or after they changed; about a minute)..."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

# The Node SDK for tests/test_node_sdk.py, from its lock file (without npm that test is skipped, outside CI).
$(NODE_STAMP): tests/node/package-lock.json
	@if command -v npm >/dev/null; then \
		cd tests/node && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "npm not found: the Node SDK test will be skipped"; fi

node-deps: $(NODE_STAMP)

serve: $(STAMP)
	$(BIN)/1min-relay serve

# `make demo PORT=8080 SIMULATOR_PORT=8081` keeps the same addresses across restarts (default: free ports).
demo: $(STAMP)
	$(BIN)/1min-relay demo $(if $(SIMULATOR_PORT),--simulator-port $(SIMULATOR_PORT))

simulate: $(STAMP)
	$(BIN)/1min-relay simulate

test: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

# The fuzz tests with hundreds of random examples per route instead of `make test`'s few (minutes, not
# seconds); failures are kept in .hypothesis/ and replayed first on the next run.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -o timeout=3600 tests/test_fuzz_properties.py tests/test_fuzz_openapi.py

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

# Regenerate the hashed lock files after changing dependencies in pyproject.toml (needs `uv`).
lock:
	uv pip compile pyproject.toml --generate-hashes --no-emit-index-url --no-header --python-version 3.11 -o requirements.lock
	uv pip compile pyproject.toml --group dev --extra otel --generate-hashes --no-emit-index-url --no-header --python-version 3.11 -o requirements-dev.lock

# Rewrite the shipped model catalogue snapshot from the live service (ONEMIN_API_URL; no key needed).
refresh-catalogue: $(STAMP)
	$(BIN)/1min-relay refresh-catalogue --output src/onemin_relay/data/catalogue.json

bench: $(STAMP)
	$(BIN)/python bench/relay_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/node/node_modules
