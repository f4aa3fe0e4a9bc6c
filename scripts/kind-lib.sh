# shellcheck shell=bash
# Shared by the kind scripts (kind-up.sh, e2e.sh, kind-grafana.sh). Source it; it runs
# nothing. The Makefile passes the settings; the defaults match it.

KIND_CLUSTER="${KIND_CLUSTER:-loopscope}"
KIND_CONFIG="${KIND_CONFIG:-$ROOT/deploy/kind.yaml}"
KUBE_CONTEXT="${KUBE_CONTEXT:-kind-$KIND_CLUSTER}"
HELM_RELEASE="${HELM_RELEASE:-loopscope}"
HELM_NAMESPACE="${HELM_NAMESPACE:-loopscope}"

say() { printf '%s\n' "$*"; }
step() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# need COMMAND...: every COMMAND is on PATH, or exit naming what is missing.
need() {
    local cmd missing=()
    for cmd in "$@"; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    [[ ${#missing[@]} -eq 0 ]] || die "not on PATH: ${missing[*]} (the kind workflow needs docker, kind >= 0.30, kubectl, helm and curl; see README, Kubernetes)"
}

# k ARGS...: kubectl in the release's context and namespace.
k() { kubectl --context "$KUBE_CONTEXT" -n "$HELM_NAMESPACE" "$@"; }

# object KIND COMPONENT: the name of the release's KIND labelled with COMPONENT.
object() {
    local name
    name="$(k get "$1" -l "app.kubernetes.io/instance=$HELM_RELEASE,app.kubernetes.io/component=$2" \
        -o jsonpath='{.items[0].metadata.name}' 2>/dev/null)" || true
    [[ -n "$name" ]] || die "no $1 of component $2 in release $HELM_RELEASE (namespace $HELM_NAMESPACE, context $KUBE_CONTEXT): run 'make deploy' first"
    printf '%s\n' "$name"
}

# urlencode STRING: percent-encodes everything but unreserved characters.
urlencode() {
    local s="$1" out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
        [a-zA-Z0-9.~_-]) out+="$c" ;;
        *) out+="$(printf '%%%02X' "'$c")" ;;
        esac
    done
    printf '%s' "$out"
}

# grafana_login: "user password" of the release's Grafana, from the files its pod reads
# (a Secret's, or the password the pod generated at start when the values set none).
grafana_login() {
    local deploy user password
    deploy="$(object deployment grafana)"
    user="$(k exec "deploy/$deploy" -c grafana -- cat /etc/grafana/admin/user)"
    password="$(k exec "deploy/$deploy" -c grafana -- cat /etc/grafana/admin/password)"
    printf '%s %s\n' "$user" "$password"
}
