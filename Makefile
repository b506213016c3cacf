# Motorhead Serverless — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LAYER := layers/shared/python
TIKTOKEN_CACHE := $(LAYER)/motorhead/tiktoken_cache
export PYTHONPATH := $(CURDIR)/$(LAYER):$(CURDIR)

.PHONY: help install run key keys revoke-key adopt-sessions test lint typecheck unit integration bench bench-locomo bench-users bench-redis bench-peer build validate clean
.PHONY: invoke env-vars mcp

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt requirements-embeddings.txt $(wildcard layers/*/requirements.txt)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

$(TIKTOKEN_CACHE)/.complete: $(VENV)/.installed scripts/build_tiktoken_cache.py
	$(PY) scripts/build_tiktoken_cache.py --out $(TIKTOKEN_CACHE)
	@touch $@

install: $(VENV)/.installed $(TIKTOKEN_CACHE)/.complete ## create .venv, install everything, build the offline tiktoken cache

run: install ## serve the API on http://127.0.0.1:8080 (PORT overrides; embedded Redis unless REDIS_URL is set)
	$(PY) -m devserver

key: install ## create an API key: make key TENANT=acme [SCOPES=read,write] [LABEL=...]; the key is the last line
	@$(PY) -m devserver.keys create --tenant "$(TENANT)" $(if $(SCOPES),--scopes "$(SCOPES)") $(if $(LABEL),--label "$(LABEL)")

keys: install ## list API keys, never the keys themselves (TENANT=acme to filter)
	@$(PY) -m devserver.keys list $(if $(TENANT),--tenant "$(TENANT)")

revoke-key: install ## revoke an API key: make revoke-key KEY_ID=0123456789abcdef (stops working within 1 s)
	@$(PY) -m devserver.keys revoke --key-id "$(KEY_ID)"

adopt-sessions: install ## move the sessions stored with MOTORHEAD_AUTH=none to a tenant: make adopt-sessions TENANT=acme [DRY_RUN=1]
	@$(PY) -m devserver.keys adopt --tenant "$(TENANT)" $(if $(DRY_RUN),--dry-run)

mcp: ## the memory's MCP tools over stdio, for Claude Desktop / Cursor (make -s mcp; MOTORHEAD_API_KEY, REDIS_URL optional)
	@$(MAKE) --no-print-directory install >&2  # stdout is the protocol's alone, even on a first install
	@$(PY) -m devserver.mcp

invoke: ## one function on one event as `make run` runs it, its JSON answer alone on stdout: make invoke FUNCTION=HealthFunction EVENT=events/health-ok.json
	@$(MAKE) --no-print-directory install >&2  # stdout is the answer's alone, even on a first install
	@$(PY) -m devserver.invoke "$(FUNCTION)" --event "$(EVENT)"

env-vars: install ## sam local's --env-vars file, .aws-sam/env-vars.json (OUT=...), every function on SAM_REDIS_URL (default redis://host.docker.internal:6379/0)
	@$(PY) -m devserver.sam_env $(if $(SAM_REDIS_URL),--redis-url "$(SAM_REDIS_URL)") $(if $(OUT),--out "$(OUT)")

lint: install ## ruff (lint + format check), mypy, and the import contracts (lint-imports)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/shared/python/motorhead functions devserver bench scripts tests examples
	$(VENV)/bin/lint-imports --no-cache

test: install lint ## install, lint, and run the whole test suite (what CI runs)
	$(PY) -m pytest

unit: install ## the unit tests only (no Redis)
	$(PY) -m pytest tests/unit

integration: install ## the integration tests only (real Redis servers started by fixtures)
	$(PY) -m pytest tests/integration

bench: install ## benchmarks (figures and ratios); flags through ARGS, e.g. make bench ARGS="--quick --only warm"; the peer's side by side too when it is installed
	OPENBLAS_NUM_THREADS=1 $(PY) bench/run.py $(ARGS)
	$(if $(filter --only,$(ARGS)),,OPENBLAS_NUM_THREADS=1 $(PY) bench/peer.py $(filter --quick,$(ARGS)))

bench-users: install ## user-level retrieval on LoCoMo (each conversation a user, each session bound to it) and its budget (bench/locomo_users.py)
	OPENBLAS_NUM_THREADS=1 $(PY) bench/locomo_users.py $(ARGS)

bench-redis: install ## Redis round trips, commands and server CPU per op of each hot route vs a PING floor (bench/redis_cost.py; ARGS="--quick")
	OPENBLAS_NUM_THREADS=1 $(PY) bench/redis_cost.py $(ARGS)

bench-peer: install ## beside agent-memory-server 0.15.2 on one Redis: round trips, Redis CPU, throughput (bench/peer.py; optional, needs the peer: docs/benchmarks.md; ARGS="--quick")
	OPENBLAS_NUM_THREADS=1 $(PY) bench/peer.py $(ARGS)

bench-locomo: install ## retrieval quality on LoCoMo for every recipe, latency, budgets, encoder (bench/locomo.py; ~3 min)
	OPENBLAS_NUM_THREADS=1 $(PY) bench/locomo.py $(ARGS)


.PHONY: console-screenshot
console-screenshot: install ## docs/images/console.png: make run with sample data, the console captured by Chromium (docs/console.md)
	$(PY) scripts/console_screenshot.py

build: ## sam validate + sam build; prints each layer and each function with its layers, in bytes and MiB, against 250 MiB
	bash scripts/sam_build.sh

validate: install ## cfn-lint the template
	$(VENV)/bin/cfn-lint template.yaml

clean: ## remove build output and caches (keeps .venv and .data)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache $(TIKTOKEN_CACHE)
