# What every layer's Makefile shares (included by layers/<name>/Makefile; read layers/shared/Makefile first).
#
# How SAM runs a layer's Makefile (aws-lambda-builders CustomMakeWorkflow): it copies the layer's ContentUri into a
# scratch directory, then runs `make --makefile <repo>/layers/<name>/Makefile build-<LogicalId>` there, with
# ARTIFACTS_DIR (the layer's root, .aws-sam/build/<LogicalId>, extracted by Lambda into /opt) in the environment.
# The --makefile argument is the ORIGINAL file, so MAKEFILE_LIST gives the real layers/<name>/ and from there the
# repo root; every input is read from there, never from the working directory. Override MOTORHEAD_REPO_ROOT if a
# Makefile is ever invoked from a copy. Not supported: `sam build --use-container` (the container sees only the
# ContentUri, not scripts/). SAM's cached build hashes the ContentUri only: after changing this file or scripts/,
# build without --cached once (or `rm -rf .aws-sam/cache`).
#
# Inputs from the environment (all optional): PYTHON (a python with pip; default python3), PYTHON312 (default
# python3.12).

LAYER_DIR := $(patsubst %/,%,$(dir $(abspath $(firstword $(MAKEFILE_LIST)))))
MOTORHEAD_REPO_ROOT ?= $(abspath $(LAYER_DIR)/../..)
MODEL_MANIFEST := $(MOTORHEAD_REPO_ROOT)/layers/shared/python/motorhead/adapters/onnx_local/model_manifest.json

PYTHON ?= python3
PYTHON312 ?= python3.12
LAMBDA_ARCH := x86_64
# Lambda's python3.12 runs on Amazon Linux 2023 (glibc 2.34). pip expands manylinux2014 to the older tags
# (manylinux_2_17 and below) but takes every newer tag literally, so list 2_18 .. 2_34: tiktoken >= 0.12 ships
# only manylinux_2_28 wheels, pydantic-core only manylinux2014 ones.
PLATFORMS := --platform manylinux2014_$(LAMBDA_ARCH) \
	$(foreach minor,$(shell seq 18 34),--platform manylinux_2_$(minor)_$(LAMBDA_ARCH))
# `$(PIP_TARGET) <dir> <pip arguments>`: Lambda's python3.12 x86_64 wheels only, no byte code (compiled below)
PIP_TARGET = $(PYTHON) -m pip install --quiet --disable-pip-version-check --no-warn-conflicts \
	--root-user-action=ignore --no-compile --upgrade $(PLATFORMS) --implementation cp --python-version 3.12 \
	--only-binary=:all: --target

define require-artifacts-dir
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (run through sam build)" >&2; exit 2; }
endef

# `$(call byte-code,<dir>)`: byte code for 3.12, checked by nobody. /opt is read-only on Lambda, so without it every
# cold start compiles the imports from source (fastapi+mangum+redis+tiktoken+powertools: ~735 ms vs ~245 ms
# measured here). unchecked-hash because a layer never changes once built and zip mtimes would not match anyway.
define byte-code
	find "$(1)" -depth -type d -name __pycache__ -exec rm -rf {} +
	if $(PYTHON312) -c "import sys; sys.exit(sys.version_info[:2] != (3, 12))" 2>/dev/null; then \
		$(PYTHON312) -m compileall -q -j 0 --invalidation-mode unchecked-hash "$(1)"; \
	else \
		echo "warning: $(PYTHON312) not found: the layer ships no byte code (slower cold starts)" >&2; \
	fi
endef
