# perpclear build / test entry points.  `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := $(CURDIR)/.venv
VPY := $(VENV)/bin/python
ANVIL_DIR := $(CURDIR)/node_modules/@foundry-rs/anvil-linux-amd64/bin

# Every recipe sees the venv's `vyper` (ape-vyper then uses the pip compiler
# instead of downloading one through vvm) and the npm-shipped `anvil`
# (ape-foundry starts it itself).
export PATH := $(VENV)/bin:$(ANVIL_DIR):$(PATH)
export VIRTUAL_ENV := $(VENV)
export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PYTHONDONTWRITEBYTECODE := 1

# Extra arguments for ape test / ape run, e.g.  make test ARGS="-k foo -x"
ARGS ?=
# Size of the stateful fuzzing (tests/fuzz): quick here, ci in .ci/run.
FUZZ_PROFILE ?= quick
export PERPCLEAR_FUZZ_PROFILE := $(FUZZ_PROFILE)
# Worker processes for the embedded pass (pytest-xdist; JOBS=0 runs in this
# process, e.g. to see a test's prints: make test-local JOBS=0 ARGS="-s -k gas").
# Each test file runs whole on one worker, in order, as it would alone: ape's
# chain isolation snapshots per module.
JOBS ?= 2
# Network for the anvil-marked subset.
ANVIL_NETWORK ?= ethereum:local:foundry

PIP_VERSION := 26.3
SETUP_STAMP := $(VENV)/.perpclear-setup.stamp
NODE_STAMP := $(CURDIR)/node_modules/.perpclear-npm.stamp

.PHONY: help setup setup-cluster test test-local test-anvil demo gas gas-table bench compile clean distclean

help:
	@echo "make setup                 create .venv + node_modules (idempotent)"
	@echo "make setup-cluster         also install the optional Ray extra (perpclear sweep --ray)"
	@echo "make test [ARGS=...] [JOBS=N]  all tests on ape's embedded EVM, then the 'anvil'-marked ones on anvil"
	@echo "make test-local / test-anvil   one half of 'make test'"
	@echo "make compile               ape compile"
	@echo "make demo [ARGS=...]       ape run demo"
	@echo "make gas [ARGS=...]        ape test tests --gas (gas report; receipt-level on the embedded EVM,"
	@echo "                           per-method incl. deploys/views with ARGS=\"--network ethereum:local:foundry\")"
	@echo "make bench                 cascade benchmark: runner vs raw speed on revm, titanoboa and anvil"
	@echo "make clean                 remove build outputs (.build, caches); 'make distclean' also drops .venv and node_modules"

setup: $(SETUP_STAMP) $(NODE_STAMP)

$(VPY):
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "perpclear needs Python >= 3.11, got " + sys.version'
	$(PYTHON) -m venv $(VENV)

$(SETUP_STAMP): $(VPY) requirements.txt constraints.txt pyproject.toml
	$(VPY) -m pip install -qq "pip==$(PIP_VERSION)"
	$(VPY) -m pip install -qq -r requirements.txt -c constraints.txt
	$(VPY) -m pip install -qq -e . --no-deps
	@[ "$$(command -v vyper)" = "$(VENV)/bin/vyper" ] && vyper --version | grep -q '^0\.4\.3+' \
		|| { echo "error: pip vyper 0.4.3 is not the first vyper on PATH" >&2; exit 1; }
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@test -x $(ANVIL_DIR)/anvil || { echo "error: anvil binary missing in $(ANVIL_DIR)" >&2; exit 1; }
	@anvil --version | head -n1
	@touch $@

CLUSTER_STAMP := $(VENV)/.perpclear-cluster.stamp
setup-cluster: $(CLUSTER_STAMP)

$(CLUSTER_STAMP): $(SETUP_STAMP)
	$(VPY) -m pip install -qq -e ".[cluster]" -c constraints.txt
	@touch $@

# pytest exit code 5 ("no tests collected") is a failure here on purpose.
test: setup
	$(MAKE) --no-print-directory test-local
	$(MAKE) --no-print-directory test-anvil

test-local: setup
	ape test tests -n $(JOBS) --dist loadfile $(ARGS)

test-anvil: setup
	ape test tests -m anvil --network $(ANVIL_NETWORK) $(ARGS)

bench: setup
	$(VPY) -m perpclear.bench $(ARGS)

compile: setup
	ape compile

demo: setup
	ape run demo $(ARGS)

gas: setup
	ape test tests --gas $(ARGS)

gas-table: setup
	PERPCLEAR_UPDATE_GAS=1 ape test tests/gas $(ARGS)

clean:
	rm -rf .build .pytest_cache .hypothesis build dist src/*.egg-info
	find . -path ./.venv -prune -o -path ./node_modules -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf .venv node_modules
