# Motorhead Serverless — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
LAYER := layers/shared/python
TIKTOKEN_CACHE := $(LAYER)/motorhead/tiktoken_cache
export PYTHONPATH := $(CURDIR)/$(LAYER):$(CURDIR)

.PHONY: help install run key keys revoke-key adopt-sessions test lint typecheck unit integration bench bench-locomo layer-sizes build validate clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements-dev.txt layers/shared/requirements.txt
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

revoke-key: install ## revoke an API key: make revoke-key KEY_ID=0123456789abcdef (stops working within 60 s)
	@$(PY) -m devserver.keys revoke --key-id "$(KEY_ID)"

adopt-sessions: install ## move the sessions stored with MOTORHEAD_AUTH=none to a tenant: make adopt-sessions TENANT=acme [DRY_RUN=1]
	@$(PY) -m devserver.keys adopt --tenant "$(TENANT)" $(if $(DRY_RUN),--dry-run)

lint: install ## ruff (lint + format check), mypy, and the import contracts (lint-imports)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/shared/python/motorhead functions devserver bench scripts tests
	$(VENV)/bin/lint-imports --no-cache

test: install lint ## install, lint, and run the whole test suite (what CI runs)
	$(PY) -m pytest

unit: install ## the unit tests only (no Redis)
	$(PY) -m pytest tests/unit

integration: install ## the integration tests only (real Redis servers started by fixtures)
	$(PY) -m pytest tests/integration

bench: install ## benchmarks (figures and ratios); flags through ARGS, e.g. make bench ARGS="--quick --only warm"
	OPENBLAS_NUM_THREADS=1 $(PY) bench/run.py $(ARGS)

bench-locomo: install ## retrieval quality on LoCoMo for every recipe, latency, budgets, encoder (bench/locomo.py; ~3 min)
	OPENBLAS_NUM_THREADS=1 $(PY) bench/locomo.py $(ARGS)

layer-sizes: install ## the SharedLayer and the local embedder's runtime, unzipped, against Lambda's 250 MB (needs PyPI)
	$(PY) bench/layer_size.py $(ARGS)

build: ## sam build (offline) and report the built sizes
	bash scripts/sam_build.sh

validate: install ## cfn-lint the template
	$(VENV)/bin/cfn-lint template.yaml

clean: ## remove build output and caches (keeps .venv and .data)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache $(TIKTOKEN_CACHE)
