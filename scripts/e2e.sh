#!/usr/bin/env bash
# make e2e, after make deploy: the stack in the kind cluster works end to end.
#   1. helm test: the gateway answers compare and a backend call through each worker;
#      Prometheus has every target up and the rules loaded.
#   2. A short loadgen run through the gateway, from inside the cluster (the loadgen pod).
#   3. A dashboard query (Service overview: requests per second by service) answered by
#      the bundled Prometheus, from the host through the kind port mapping, with a series
#      for every service; and Grafana serving every dashboard of grafana/dashboards.
#
# Needs kubectl, helm and curl, and the release deployed with deploy/kind-values.yaml.
# Environment: KUBE_CONTEXT [kind-loopscope], HELM_RELEASE [loopscope],
# HELM_NAMESPACE [loopscope], PROMETHEUS_URL [http://127.0.0.1:30090],
# GRAFANA_URL [http://127.0.0.1:30300], GATEWAY_URL [http://127.0.0.1:30080].
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=kind-lib.sh
source "$ROOT/scripts/kind-lib.sh"

PROMETHEUS_URL="${PROMETHEUS_URL:-http://127.0.0.1:30090}"
GRAFANA_URL="${GRAFANA_URL:-http://127.0.0.1:30300}"
GATEWAY_URL="${GATEWAY_URL:-http://127.0.0.1:30080}"
LOAD_SECONDS="${LOAD_SECONDS:-15}"
WAIT_SECONDS="${WAIT_SECONDS:-120}"

need kubectl helm curl

step "helm test $HELM_RELEASE"
helm test "$HELM_RELEASE" --kube-context "$KUBE_CONTEXT" -n "$HELM_NAMESPACE" --logs --timeout 5m

step "the gateway from the host ($GATEWAY_URL)"
curl -fsS --max-time 10 "$GATEWAY_URL/api/compare?kind=io&ms=10"
echo

step "loadgen run: ${LOAD_SECONDS}s at 20 requests/s through the gateway, from the loadgen pod"
loadgen_pod="$(object deployment loadgen)"
gateway_svc="$(object service gateway)"
k exec "deploy/$loadgen_pod" -- /usr/local/bin/loadgen run \
    "http://$gateway_svc:8080/api/compare?kind=io&ms=20" \
    "http://$gateway_svc:8080/api/async/work/call?ms=10" \
    "http://$gateway_svc:8080/api/threadpool/work/call?ms=10" \
    --rate 20 -d "${LOAD_SECONDS}s" --quiet

# The first panel of the Service overview dashboard, its variables set to "All". It reads a
# recording rule, so an answer also proves the rules are loaded and evaluated.
query='sum by (service, handling) (service_handling:loopscope_http_requests:rate1m{service=~".*", handling=~".*"})'
step "dashboard query on the bundled Prometheus ($PROMETHEUS_URL): $query"
url="$PROMETHEUS_URL/api/v1/query?query=$(urlencode "$query")"
deadline=$((SECONDS + WAIT_SECONDS))
while :; do
    answer="$(curl -fsS --max-time 10 "$url" || true)"
    missing=()
    for series in '"service":"gateway"' \
        '"handling":"async","service":"worker"' \
        '"handling":"threadpool","service":"worker"' \
        '"service":"backend"'; do
        [[ "$answer" == *"$series"* ]] || missing+=("$series")
    done
    [[ ${#missing[@]} -eq 0 ]] && break
    if ((SECONDS >= deadline)); then
        say "answer: $answer"
        die "no series for ${missing[*]} after ${WAIT_SECONDS}s"
    fi
    sleep 5
done
say "$answer"

step "Grafana ($GRAFANA_URL) serves every dashboard of grafana/dashboards"
read -r user password < <(grafana_login)
want="$(find "$ROOT/grafana/dashboards" -name '*.json' | wc -l)"
got="$(curl -fsS --max-time 10 -u "$user:$password" "$GRAFANA_URL/api/search?type=dash-db" |
    grep -o '"type":"dash-db"' | wc -l)"
[[ "$got" -eq "$want" ]] || die "Grafana has $got dashboards, grafana/dashboards has $want"
say "$got dashboards"

step "e2e passed"
