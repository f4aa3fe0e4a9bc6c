#!/usr/bin/env bash
# make kind-up: create the kind cluster of deploy/kind.yaml (once; a second run only waits
# for it) and wait for its node to be ready.
#
# Needs a Docker engine, kind >= 0.30 and kubectl.
# Environment: KIND_CLUSTER [loopscope], KIND_CONFIG [deploy/kind.yaml].
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=kind-lib.sh
source "$ROOT/scripts/kind-lib.sh"

need docker kind kubectl
docker info >/dev/null 2>&1 ||
    die "no Docker engine answers ('docker info' failed): kind runs its node as a container"

if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
    say "kind cluster '$KIND_CLUSTER' already exists"
else
    step "kind create cluster --name $KIND_CLUSTER --config $KIND_CONFIG"
    kind create cluster --name "$KIND_CLUSTER" --config "$KIND_CONFIG" --wait 180s
fi

kubectl --context "$KUBE_CONTEXT" wait --for=condition=Ready node --all --timeout=180s
say "cluster '$KIND_CLUSTER' ready (kubectl context $KUBE_CONTEXT); next: make deploy"
