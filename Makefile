# Two commands on a fresh machine: `make demo` (or `make serve`) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := tests/node/node_modules/.installed

.PHONY: install serve demo openwebui-demo openwebui-screenshots simulate test lint format lock bench refresh-catalogue clean

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

# Prints how to run the real Open WebUI against `make demo PORT=5001` (docs/open-webui.md); runs nothing: its
# image is gigabytes. OPEN_WEBUI_IMAGE is the image its README names.
OPEN_WEBUI_IMAGE ?= <the Open WebUI image its README names>
openwebui-demo:
	@echo "1. In one terminal:  make demo PORT=5001"
	@echo "2. In another (Linux, Docker; pulls several GB the first time):"
	@echo "   docker run --rm --network=host -v open-webui:/app/backend/data \\"
	@echo "     -e OPENAI_API_BASE_URL=http://127.0.0.1:5001/v1 -e OPENAI_API_KEY=demo-key -e ENABLE_OLLAMA_API=false \\"
	@echo "     -e TASK_MODEL_EXTERNAL=gpt-4o-mini -e ENABLE_FOLLOW_UP_GENERATION=false -e ENABLE_TAGS_GENERATION=false \\"
	@echo "     -e ENABLE_IMAGE_GENERATION=true -e IMAGE_GENERATION_ENGINE=openai -e IMAGE_GENERATION_MODEL=dall-e-3 -e IMAGE_SIZE=1024x1024 \\"
	@echo "     -e AUDIO_TTS_ENGINE=openai -e AUDIO_TTS_OPENAI_API_BASE_URL=http://127.0.0.1:5001/v1 -e AUDIO_TTS_OPENAI_API_KEY=demo-key \\"
	@echo "     -e AUDIO_STT_ENGINE=openai -e AUDIO_STT_OPENAI_API_BASE_URL=http://127.0.0.1:5001/v1 -e AUDIO_STT_OPENAI_API_KEY=demo-key \\"
	@echo "     '$(OPEN_WEBUI_IMAGE)'"
	@echo "3. Open http://127.0.0.1:8080 and create the first (admin) account."

# Optional, never part of `make test` or CI: installs the real Open WebUI (pinned; about 7 GB with torch) into
# its own virtualenv outside the project's lock files, runs it offline against `1min-relay demo` on 127.0.0.1,
# and screenshots its model picker and a chat answer into docs/images/ with headless Chromium
# (apt-get install chromium chromium-driver). See docs/open-webui.md.
OPEN_WEBUI_VERSION ?= 0.12.4
OPEN_WEBUI_VENV ?= $(HOME)/.cache/1min-relay/open-webui-$(OPEN_WEBUI_VERSION)

$(OPEN_WEBUI_VENV)/bin/open-webui:
	@echo "Installing Open WebUI $(OPEN_WEBUI_VERSION) into $(OPEN_WEBUI_VENV) (several GB; minutes)..."
	$(PYTHON) -m venv $(OPEN_WEBUI_VENV)
	$(OPEN_WEBUI_VENV)/bin/python -m pip install --quiet open-webui==$(OPEN_WEBUI_VERSION)

openwebui-screenshots: $(STAMP) $(OPEN_WEBUI_VENV)/bin/open-webui
	PYTHONPATH=. $(BIN)/python -m tools.open_webui_screenshots --open-webui $(OPEN_WEBUI_VENV)/bin/open-webui

simulate: $(STAMP)
	$(BIN)/1min-relay simulate

test: $(STAMP) $(NODE_STAMP)
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	$(BIN)/mypy
	$(BIN)/pytest

# The fuzz tests with hundreds of random examples per route instead of `make test`'s few (minutes, not
# seconds); failures are kept in .hypothesis/ and replayed first on the next run.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -o timeout=3600 tests/test_fuzz_properties.py tests/test_fuzz_openapi.py

format: $(STAMP)
	$(BIN)/ruff format src tests bench tools
	$(BIN)/ruff check --fix src tests bench tools

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
