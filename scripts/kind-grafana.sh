#!/usr/bin/env bash
# make grafana: port-forward the release's Grafana to localhost and print its URL and
# login. Runs until Ctrl-C. Needs kubectl.
# Environment: GRAFANA_PORT [3000], KUBE_CONTEXT, HELM_RELEASE, HELM_NAMESPACE.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=kind-lib.sh
source "$ROOT/scripts/kind-lib.sh"

GRAFANA_PORT="${GRAFANA_PORT:-3000}"
need kubectl

service="$(object service grafana)"
read -r user password < <(grafana_login)

say "Grafana:  http://localhost:$GRAFANA_PORT   (on kind also http://127.0.0.1:30300)"
say "user:     $user"
say "password: $password"
say "Ctrl-C stops the port-forward."
exec kubectl --context "$KUBE_CONTEXT" -n "$HELM_NAMESPACE" port-forward "service/$service" "$GRAFANA_PORT:3000"
