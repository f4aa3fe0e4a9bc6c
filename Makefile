# loopscope: the front door. `make` (or `make help`) lists the targets.
#
# Every target that users run has a `## ` comment after its prerequisites; `make help`
# prints those. Targets without one are internal.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory
.DELETE_ON_ERROR:

CARGO ?= cargo
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
# `make up PROFILE=release` runs release binaries.
PROFILE ?= debug
BIN_DIR ?= $(TARGET_DIR)/$(PROFILE)

# Repository-local tools, first on PATH for the recipes (tests can run `spotlight`).
export PATH := $(CURDIR)/tools/spotlight/node_modules/.bin:$(PATH)

SHELL_SCRIPTS := $(wildcard scripts/*.sh) .ci/run

# Test suites `make test` runs; add later ones (test-helm, test-dashboards, ...) here.
TEST_TARGETS := test-rust

.PHONY: help
help: ## List the targets
	@printf 'Usage: make <target> [VAR=value]\n'
	@awk 'BEGIN { FS = ":[^#]*## " } \
	     /^##@ / { printf "\n%s:\n", substr($$0, 5) } \
	     /^[a-zA-Z0-9_.-]+:[^=]*## / { printf "  %-12s %s\n", $$1, $$2 }' \
	     $(MAKEFILE_LIST)
	@printf '\nVariables: PROFILE=debug|release (for up), CARGO=%s, BIN_DIR=%s\n' '$(CARGO)' '$(BIN_DIR)'

##@ Build

.PHONY: build
build: ## Build every service (debug)
	$(CARGO) build --workspace --bins

.PHONY: release
release: ## Build every service (release)
	$(CARGO) build --workspace --bins --release

##@ Run locally (no cluster)

.PHONY: up
up: $(if $(filter release,$(PROFILE)),release,build) ## Run the stack here, plus Prometheus and Spotlight if installed; Ctrl-C stops it
	BIN_DIR='$(BIN_DIR)' scripts/up.sh

.PHONY: down
down: ## Stop a stack started with `scripts/up.sh --background`
	scripts/down.sh

.PHONY: demo
demo: release ## Start the stack, run every experiment, print the verdicts, write target/demo/index.html, stop
	BIN_DIR='$(TARGET_DIR)/release' scripts/demo.sh

# Later: bench, chart, kind.

##@ Test

.PHONY: test
test: $(TEST_TARGETS) lint ## Run every test suite and the linters

.PHONY: test-rust
test-rust: tools build ## Rust unit and integration tests
	$(CARGO) test --workspace --no-fail-fast

.PHONY: lint
lint: lint-rust lint-shell ## rustfmt, clippy and shellcheck

.PHONY: lint-rust
lint-rust:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# shellcheck is installed by `make tools` when root; elsewhere it is skipped with a
# warning, except in CI.
.PHONY: lint-shell
lint-shell:
	@if command -v shellcheck >/dev/null; then \
	    echo "shellcheck $(SHELL_SCRIPTS)"; shellcheck $(SHELL_SCRIPTS); \
	elif [ -n "$${CI:-}" ]; then \
	    echo "shellcheck not found (make tools)" >&2; exit 1; \
	else \
	    echo "warning: shellcheck not found, scripts not linted (apt-get install shellcheck)" >&2; \
	fi

##@ Tools

.PHONY: tools
tools: ## Install what tests need: Prometheus/promtool, shellcheck (apt, root only), Spotlight (npm ci)
	scripts/install-tools.sh all

.PHONY: prometheus
prometheus: ## Install Prometheus and promtool (apt-get, root only)
	scripts/install-tools.sh prometheus

.PHONY: spotlight
spotlight: ## Install Spotlight, Sentry's local receiver (npm ci in tools/spotlight)
	scripts/install-tools.sh spotlight

##@ Housekeeping

.PHONY: clean
clean: ## Stop a background stack, remove build output and run state (target/)
	@if ls target/up/pids/*.pid >/dev/null 2>&1; then scripts/down.sh; fi
	$(CARGO) clean
	rm -rf target/up
