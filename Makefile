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
TEST_TARGETS := test-rust test-bench test-chart test-rules test-api

# `make bench`: its Python (FastAPI for the seeds' stack) lives in a venv of its own.
PYTHON ?= python3
BENCH_VENV := .venv-bench
# `make bench BENCH_QUICK=1` runs every measurement briefly, to check the harness.
BENCH_QUICK ?=

# `make test-chart`: Helm's own library (helm-python-sdk), kubernetes-validate, checkov and
# hadolint, pinned in tests/chart/requirements.txt, in the repository's venv.
CHART_VENV := .venv

# The kind workflow (make kind-up deploy e2e): `make deploy HELM_NAMESPACE=lab` etc.
KIND_CLUSTER ?= loopscope
KUBE_CONTEXT ?= kind-$(KIND_CLUSTER)
HELM_RELEASE ?= loopscope
HELM_NAMESPACE ?= loopscope
GIT_REVISION := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
IMAGE_REPO ?= loopscope
IMAGE_TAG ?= dev-$(GIT_REVISION)
KIND_ENV = KIND_CLUSTER='$(KIND_CLUSTER)' KUBE_CONTEXT='$(KUBE_CONTEXT)' \
	HELM_RELEASE='$(HELM_RELEASE)' HELM_NAMESPACE='$(HELM_NAMESPACE)'

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

##@ Kubernetes (kind; needs a Docker engine, kind >= 0.30, kubectl, helm, curl)

.PHONY: kind-up
kind-up: ## Create the kind cluster of deploy/kind.yaml and wait for it (docker, kind, kubectl)
	$(KIND_ENV) scripts/kind-up.sh

.PHONY: images
images: ## Build the loopscope image, every binary in one, as loopscope:dev-<git revision> (docker)
	DOCKER_BUILDKIT=1 docker build -f deploy/Dockerfile \
	    --build-arg LOOPSCOPE_REVISION='$(GIT_REVISION)' -t '$(IMAGE_REPO):$(IMAGE_TAG)' .

.PHONY: kind-load
kind-load: images ## Load the image into the kind cluster's node (kind)
	kind load docker-image --name '$(KIND_CLUSTER)' '$(IMAGE_REPO):$(IMAGE_TAG)'

# The namespace enforces Pod Security "restricted": the API server itself rejects a pod
# of the chart that breaks the profile.
.PHONY: deploy
deploy: kind-load ## helm upgrade --install --wait the chart into the kind cluster (helm, kubectl)
	kubectl --context '$(KUBE_CONTEXT)' create namespace '$(HELM_NAMESPACE)' --dry-run=client -o yaml \
	    | kubectl --context '$(KUBE_CONTEXT)' apply -f -
	kubectl --context '$(KUBE_CONTEXT)' label namespace '$(HELM_NAMESPACE)' --overwrite \
	    pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted
	helm upgrade --install '$(HELM_RELEASE)' helm/loopscope --kube-context '$(KUBE_CONTEXT)' \
	    --namespace '$(HELM_NAMESPACE)' -f deploy/kind-values.yaml \
	    --set-string image.repository='$(IMAGE_REPO)' --set-string image.tag='$(IMAGE_TAG)' \
	    --wait --timeout 5m

.PHONY: e2e
e2e: deploy ## Deploy, then helm test, a short loadgen run, a dashboard query on the bundled Prometheus (kubectl, helm, curl)
	$(KIND_ENV) scripts/e2e.sh

.PHONY: grafana
grafana: ## Port-forward the release's Grafana to localhost:3000; print its URL and login (kubectl)
	$(KIND_ENV) scripts/kind-grafana.sh

.PHONY: kind-down
kind-down: ## Delete the kind cluster (kind)
	kind delete cluster --name '$(KIND_CLUSTER)'

##@ Benchmarks

.PHONY: bench
bench: bench-tools release $(BENCH_VENV)/.installed ## Measure instrumentation, modes, scrapes, FastAPI; write docs/benchmarks.md (~10 min; BENCH_QUICK=1: ~2 min, to target/bench/quick)
	$(BENCH_VENV)/bin/python bench/run.py --bin-dir '$(TARGET_DIR)/release' \
	    $(if $(BENCH_QUICK),--quick) --command 'make bench$(if $(BENCH_QUICK), BENCH_QUICK=1)'

.PHONY: bench-tools
bench-tools:
	scripts/install-tools.sh wrk

$(BENCH_VENV)/.installed: bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

##@ Test

.PHONY: test
test: $(TEST_TARGETS) lint ## Run every test suite and the linters

.PHONY: test-rust
test-rust: tools build ## Rust unit and integration tests
	$(CARGO) test --workspace --no-fail-fast

# The alert and recording rules (one file, also shipped by the chart) and their unit tests.
# tests/tests/dashboards.rs (in test-rust) runs them against the live stack.
RULES := deploy/prometheus/rules/loopscope.rules.yml
RULE_TESTS := $(wildcard deploy/prometheus/tests/*.test.yml)

.PHONY: test-rules
test-rules: prometheus ## promtool: check the rules and the local config, run the rules' unit tests
	promtool check rules $(RULES)
	promtool check config deploy/prometheus/prometheus.yml
	promtool test rules $(RULE_TESTS)

# schemathesis (tests/api/requirements.txt) in a venv of its own.
API_VENV := .venv-api

.PHONY: test-api
test-api: build $(API_VENV)/.installed ## Every route fuzzed against docs/openapi.yaml (schemathesis on the real binaries, ~1 min)
	PYTHONDONTWRITEBYTECODE=1 $(API_VENV)/bin/python tests/api/fuzz.py

$(API_VENV)/.installed: tests/api/requirements.txt
	$(PYTHON) -m venv $(API_VENV)
	$(API_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/api/requirements.txt
	touch $@

.PHONY: test-bench
test-bench: ## The bench harness's own logic (parsing, Little's law, tables, the report); no load
	$(PYTHON) -m unittest discover -s bench -p 'test_*.py'

.PHONY: test-chart
test-chart: prometheus $(CHART_VENV)/.chart-installed ## The Helm chart: render, lint, kubernetes-validate 1.29+, restricted pods, checkov, promtool, dashboards, hadolint
	PYTHONDONTWRITEBYTECODE=1 $(CHART_VENV)/bin/python -m pytest -p no:cacheprovider tests/chart

$(CHART_VENV)/.chart-installed: tests/chart/requirements.txt
	$(PYTHON) -m venv $(CHART_VENV)
	$(CHART_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/chart/requirements.txt
	touch $@

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
