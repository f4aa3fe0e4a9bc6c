#!/usr/bin/env bash
# Run the loopscope stack locally, without a cluster: backend, worker (async), worker
# (threadpool), gateway, plus Prometheus, Grafana and Spotlight when they are installed.
#
#   scripts/up.sh               foreground: Ctrl-C (or SIGTERM) stops everything, exit 0;
#                               if a process dies, the others are stopped, exit 1
#   scripts/up.sh --background  start, wait until ready, print the URLs and return;
#                               stop later with scripts/down.sh (`make down`)
#
# Logs: target/up/logs/<name>.log. PIDs: target/up/pids/<name>.pid.
#
# Environment (all optional):
#   BIN_DIR              where backend, worker, gateway are          [target/debug]
#   GATEWAY_PORT / GATEWAY_ADMIN_PORT                               [8080 / 9080]
#   WORKER_ASYNC_PORT / WORKER_ASYNC_ADMIN_PORT                     [8081 / 9081]
#   WORKER_THREADPOOL_PORT / WORKER_THREADPOOL_ADMIN_PORT           [8082 / 9082]
#   BACKEND_PORT / BACKEND_ADMIN_PORT                               [8083 / 9083]
#   PROMETHEUS_PORT / SPOTLIGHT_PORT / GRAFANA_PORT                 [9090 / 8969 / 3000]
#   WITH_PROMETHEUS, WITH_SPOTLIGHT, WITH_GRAFANA
#                        auto (if installed) | yes (required) | no   [auto]
#                        (Grafana: grafana-server on PATH, and only with Prometheus)
#   GRAFANA_HOME         Grafana's install folder (conf/, public/)   [/usr/share/grafana]
#   READY_TIMEOUT        seconds to wait for every /readyz           [30]
#   STOP_TIMEOUT         seconds between SIGTERM and SIGKILL         [15]
#   LOOPSCOPE_LOG_FORMAT service log format                          [text]
#   SENTRY_DSN           if set, services report there and Spotlight is not started
#                        (unless WITH_SPOTLIGHT=yes)
#   SENTRY_ENVIRONMENT   [local]; other LOOPSCOPE_* variables reach the services as they are.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"

if ((BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4))); then
    err "bash >= 4.4 is needed (this is $BASH_VERSION; on macOS: brew install bash)"
    exit 1
fi

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

BACKGROUND=0
while [[ $# -gt 0 ]]; do
    case "$1" in
    -b | --background) BACKGROUND=1 ;;
    -h | --help) usage; exit 0 ;;
    *) err "unknown argument: $1"; usage >&2; exit 2 ;;
    esac
    shift
done

BIN_DIR="${BIN_DIR:-$ROOT/target/debug}"
[[ "$BIN_DIR" == /* ]] || BIN_DIR="$PWD/$BIN_DIR"

GATEWAY_PORT="${GATEWAY_PORT:-8080}"
GATEWAY_ADMIN_PORT="${GATEWAY_ADMIN_PORT:-9080}"
WORKER_ASYNC_PORT="${WORKER_ASYNC_PORT:-8081}"
WORKER_ASYNC_ADMIN_PORT="${WORKER_ASYNC_ADMIN_PORT:-9081}"
WORKER_THREADPOOL_PORT="${WORKER_THREADPOOL_PORT:-8082}"
WORKER_THREADPOOL_ADMIN_PORT="${WORKER_THREADPOOL_ADMIN_PORT:-9082}"
BACKEND_PORT="${BACKEND_PORT:-8083}"
BACKEND_ADMIN_PORT="${BACKEND_ADMIN_PORT:-9083}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
SPOTLIGHT_PORT="${SPOTLIGHT_PORT:-8969}"
GRAFANA_PORT="${GRAFANA_PORT:-3000}"
GRAFANA_HOME="${GRAFANA_HOME:-/usr/share/grafana}"
WITH_PROMETHEUS="${WITH_PROMETHEUS:-auto}"
WITH_SPOTLIGHT="${WITH_SPOTLIGHT:-auto}"
WITH_GRAFANA="${WITH_GRAFANA:-auto}"
READY_TIMEOUT="${READY_TIMEOUT:-30}"

# Where to probe: the services bind LOOPSCOPE_HOST (default 127.0.0.1).
PROBE_HOST="${LOOPSCOPE_HOST:-127.0.0.1}"
case "$PROBE_HOST" in 0.0.0.0 | :: | "[::]") PROBE_HOST=127.0.0.1 ;; esac
[[ "$PROBE_HOST" == *:* && "$PROBE_HOST" != \[* ]] && PROBE_HOST="[$PROBE_HOST]"

SPOTLIGHT_BIN="$ROOT/tools/spotlight/node_modules/.bin/spotlight"
PROMETHEUS_CONFIG="$ROOT/deploy/prometheus/prometheus.yml"

# ---------------------------------------------------------------------------- preflight

problems=()
have() { command -v "$1" >/dev/null 2>&1; }

have curl || problems+=("curl is needed to check readiness (apt-get install -y curl)")
for bin in backend worker gateway; do
    [[ -x "$BIN_DIR/$bin" ]] || problems+=("$BIN_DIR/$bin not found: run 'make build' (or set BIN_DIR)")
done

use_spotlight=0
case "$WITH_SPOTLIGHT" in
yes)
    use_spotlight=1
    [[ -x "$SPOTLIGHT_BIN" ]] || problems+=("WITH_SPOTLIGHT=yes but Spotlight is not installed: run 'make spotlight'")
    ;;
auto)
    if [[ -n "${SENTRY_DSN:-}" ]]; then
        say "SENTRY_DSN is set: services report there, Spotlight not started"
    elif [[ -x "$SPOTLIGHT_BIN" ]]; then
        use_spotlight=1
    else
        say "Spotlight not installed ('make spotlight'): running without a local Sentry"
    fi
    ;;
no) ;;
*) problems+=("WITH_SPOTLIGHT must be auto, yes or no (not '$WITH_SPOTLIGHT')") ;;
esac

use_prometheus=0
PROMETHEUS_BIN="$(command -v prometheus || true)"
case "$WITH_PROMETHEUS" in
yes)
    use_prometheus=1
    [[ -n "$PROMETHEUS_BIN" ]] || problems+=("WITH_PROMETHEUS=yes but prometheus is not on PATH: run 'make prometheus'")
    ;;
auto)
    if [[ -n "$PROMETHEUS_BIN" ]]; then
        use_prometheus=1
    else
        say "prometheus not on PATH ('make prometheus'): running without Prometheus"
    fi
    ;;
no) ;;
*) problems+=("WITH_PROMETHEUS must be auto, yes or no (not '$WITH_PROMETHEUS')") ;;
esac

# Grafana, provisioned from grafana/provisioning: the Prometheus above as data source uid
# `prometheus`, the dashboards of grafana/dashboards in a `loopscope` folder.
use_grafana=0
GRAFANA_BIN="$(command -v grafana-server || true)"
case "$WITH_GRAFANA" in
yes)
    use_grafana=1
    [[ -n "$GRAFANA_BIN" ]] || problems+=("WITH_GRAFANA=yes but grafana-server is not on PATH")
    [[ $use_prometheus -eq 1 ]] || problems+=("WITH_GRAFANA=yes needs Prometheus (WITH_PROMETHEUS)")
    ;;
auto)
    if [[ -n "$GRAFANA_BIN" && $use_prometheus -eq 1 ]]; then
        use_grafana=1
    elif [[ -n "$GRAFANA_BIN" ]]; then
        say "grafana-server found, but no Prometheus to show: running without Grafana"
    fi
    ;;
no) ;;
*) problems+=("WITH_GRAFANA must be auto, yes or no (not '$WITH_GRAFANA')") ;;
esac
if [[ $use_grafana -eq 1 && ! -d "$GRAFANA_HOME/conf" ]]; then
    problems+=("Grafana's install folder $GRAFANA_HOME has no conf/: set GRAFANA_HOME")
fi

# A previous run still alive?
running=()
if pid="$(live_pid up)"; then running+=("scripts/up.sh (pid $pid)"); fi
while read -r name; do
    [[ -n "$name" ]] || continue
    if pid="$(live_pid "$name")"; then running+=("$name (pid $pid)"); fi
done < <(recorded_names)
if [[ ${#running[@]} -gt 0 ]]; then
    err "loopscope is already running: ${running[*]}"
    err "stop it with 'scripts/down.sh' (make down)"
    exit 1
fi

ports=(
    "gateway:$GATEWAY_PORT" "gateway admin:$GATEWAY_ADMIN_PORT"
    "worker-async:$WORKER_ASYNC_PORT" "worker-async admin:$WORKER_ASYNC_ADMIN_PORT"
    "worker-threadpool:$WORKER_THREADPOOL_PORT" "worker-threadpool admin:$WORKER_THREADPOOL_ADMIN_PORT"
    "backend:$BACKEND_PORT" "backend admin:$BACKEND_ADMIN_PORT"
)
[[ $use_prometheus -eq 1 ]] && ports+=("prometheus:$PROMETHEUS_PORT")
[[ $use_spotlight -eq 1 ]] && ports+=("spotlight:$SPOTLIGHT_PORT")
[[ $use_grafana -eq 1 ]] && ports+=("grafana:$GRAFANA_PORT")
declare -A seen_port=()
for entry in "${ports[@]}"; do
    port="${entry##*:}"
    if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
        problems+=("${entry%:*} port '$port' is not a port number")
    elif [[ -n "${seen_port[$port]:-}" ]]; then
        problems+=("${entry%:*} and ${seen_port[$port]} both want port $port")
    elif port_in_use "$port"; then
        hint=""
        [[ "${entry%:*}" == prometheus ]] && hint=" (a system Prometheus? stop it, or set PROMETHEUS_PORT or WITH_PROMETHEUS=no)"
        problems+=("port $port (${entry%:*}) is already in use$hint")
    fi
    seen_port[$port]="${entry%:*}"
done

if [[ ${#problems[@]} -gt 0 ]]; then
    for p in "${problems[@]}"; do err "$p"; done
    exit 1
fi

# ---------------------------------------------------------------------------- start

mkdir -p "$LOG_DIR" "$PID_DIR"
rm -f "$PID_DIR"/*.pid

NAMES=()
declare -A PID=() READY_URL=()
DETACHED=0
STOPPING=0
FAILED=""

entries() {
    local name
    for name in "${NAMES[@]}"; do printf '%s=%s\n' "$name" "${PID[$name]}"; done
}

# shut_down: stop every child, reap them, remove pid files. Reports non-zero exits.
shut_down() {
    local name status
    STOPPING=1
    [[ ${#NAMES[@]} -gt 0 ]] || return 0
    mapfile -t list < <(entries)
    stop_all "${list[@]}"
    for name in "${NAMES[@]}"; do
        status=0
        wait "${PID[$name]}" 2>/dev/null || status=$?
        # 127: already reaped by `wait -n`. Anything else but 0 breaks the services'
        # contract (drain and exit 0 on SIGTERM): 143 = died of SIGTERM, 137 = SIGKILL.
        [[ "$name" == "$FAILED" ]] && status=0 # already reported by fail()
        case "$status" in
        0 | 127) ;;
        *) err "$name exited with status $status while stopping (log: ${LOG_DIR#"$ROOT"/}/$name.log)" ;;
        esac
        rm -f "$PID_DIR/$name.pid"
    done
    rm -f "$PID_DIR/up.pid"
}

on_exit() {
    local status=$?
    if [[ $DETACHED -eq 0 && $STOPPING -eq 0 ]]; then
        shut_down
    fi
    exit "$status"
}

on_signal() {
    trap '' INT TERM
    say ""
    say "$1: stopping loopscope"
    shut_down
    say "stopped"
    exit 0
}

trap on_exit EXIT
trap 'on_signal SIGINT' INT
trap 'on_signal SIGTERM' TERM

# Each process gets its own session (setsid) so a terminal Ctrl-C reaches only this
# script, which then stops the processes in order with SIGTERM.
SETSID=()
have setsid && SETSID=(setsid)

# start NAME MATCH READY_URL COMMAND...
start() {
    local name="$1" match="$2" url="$3"
    shift 3
    "${SETSID[@]}" "$@" >"$LOG_DIR/$name.log" 2>&1 </dev/null &
    PID[$name]=$!
    READY_URL[$name]="$url"
    NAMES+=("$name")
    write_pidfile "$name" "${PID[$name]}" "$match"
}

# fail NAME WHY: report, show the log, stop everything, exit 1.
fail() {
    FAILED="$1"
    err "$1 $2"
    show_log_tail "$1"
    shut_down
    exit 1
}

if [[ $use_spotlight -eq 1 ]]; then
    start spotlight "$SPOTLIGHT_BIN" "http://127.0.0.1:$SPOTLIGHT_PORT/health" \
        "$SPOTLIGHT_BIN" server -p "$SPOTLIGHT_PORT"
    export SENTRY_DSN="http://public@127.0.0.1:$SPOTLIGHT_PORT/0"
    export SENTRY_TRACES_SAMPLE_RATE="${SENTRY_TRACES_SAMPLE_RATE:-1.0}"
fi
export SENTRY_ENVIRONMENT="${SENTRY_ENVIRONMENT:-local}"
export LOOPSCOPE_LOG_FORMAT="${LOOPSCOPE_LOG_FORMAT:-text}"

svc_url() { printf 'http://%s:%s' "$PROBE_HOST" "$1"; }

start backend "$BIN_DIR/backend" "$(svc_url "$BACKEND_PORT")/readyz" \
    "$BIN_DIR/backend" --port "$BACKEND_PORT" --admin-port "$BACKEND_ADMIN_PORT"
start worker-async "$BIN_DIR/worker" "$(svc_url "$WORKER_ASYNC_PORT")/readyz" \
    "$BIN_DIR/worker" --handling async --metrics-exposition both \
    --port "$WORKER_ASYNC_PORT" --admin-port "$WORKER_ASYNC_ADMIN_PORT" \
    --backend-url "$(svc_url "$BACKEND_PORT")"
start worker-threadpool "$BIN_DIR/worker" "$(svc_url "$WORKER_THREADPOOL_PORT")/readyz" \
    "$BIN_DIR/worker" --handling threadpool --metrics-exposition both \
    --port "$WORKER_THREADPOOL_PORT" --admin-port "$WORKER_THREADPOOL_ADMIN_PORT" \
    --backend-url "$(svc_url "$BACKEND_PORT")"
start gateway "$BIN_DIR/gateway" "$(svc_url "$GATEWAY_PORT")/readyz" \
    "$BIN_DIR/gateway" --port "$GATEWAY_PORT" --admin-port "$GATEWAY_ADMIN_PORT" \
    --worker-async-url "$(svc_url "$WORKER_ASYNC_PORT")" \
    --worker-threadpool-url "$(svc_url "$WORKER_THREADPOOL_PORT")"

if [[ $use_prometheus -eq 1 ]]; then
    # A copy of deploy/prometheus/prometheus.yml with the admin ports of this run; its
    # relative rule_files resolve through the `rules` link next to it.
    prom_dir="$UP_DIR/prometheus"
    mkdir -p "$prom_dir/data"
    ln -sfn "$ROOT/deploy/prometheus/rules" "$prom_dir/rules"
    sed -e 's/"127\.0\.0\.1:9080"/"@gw@"/' -e 's/"127\.0\.0\.1:9081"/"@wa@"/' \
        -e 's/"127\.0\.0\.1:9082"/"@wt@"/' -e 's/"127\.0\.0\.1:9083"/"@be@"/' \
        -e 's/"127\.0\.0\.1:9090"/"@pr@"/' \
        -e "s/\"@gw@\"/\"127.0.0.1:$GATEWAY_ADMIN_PORT\"/" \
        -e "s/\"@wa@\"/\"127.0.0.1:$WORKER_ASYNC_ADMIN_PORT\"/" \
        -e "s/\"@wt@\"/\"127.0.0.1:$WORKER_THREADPOOL_ADMIN_PORT\"/" \
        -e "s/\"@be@\"/\"127.0.0.1:$BACKEND_ADMIN_PORT\"/" \
        -e "s/\"@pr@\"/\"127.0.0.1:$PROMETHEUS_PORT\"/" \
        "$PROMETHEUS_CONFIG" >"$prom_dir/prometheus.yml"
    start prometheus "$PROMETHEUS_BIN" "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" \
        "$PROMETHEUS_BIN" --config.file="$prom_dir/prometheus.yml" \
        --storage.tsdb.path="$prom_dir/data" \
        --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
fi

if [[ $use_grafana -eq 1 ]]; then
    # Everything through GF_* settings: nothing of the system's Grafana is changed. Local
    # only (127.0.0.1), so anonymous users may edit (changes are not written back).
    graf_dir="$UP_DIR/grafana"
    mkdir -p "$graf_dir/data" "$graf_dir/logs" "$graf_dir/plugins"
    start grafana "$GRAFANA_BIN" "http://127.0.0.1:$GRAFANA_PORT/api/health" \
        env GF_PATHS_PROVISIONING="$ROOT/grafana/provisioning" \
        GF_PATHS_DATA="$graf_dir/data" GF_PATHS_LOGS="$graf_dir/logs" \
        GF_PATHS_PLUGINS="$graf_dir/plugins" \
        GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT="$GRAFANA_PORT" \
        GF_AUTH_ANONYMOUS_ENABLED=true GF_AUTH_ANONYMOUS_ORG_ROLE=Editor \
        GF_ANALYTICS_REPORTING_ENABLED=false GF_ANALYTICS_CHECK_FOR_UPDATES=false \
        LOOPSCOPE_PROMETHEUS_URL="http://127.0.0.1:$PROMETHEUS_PORT" \
        LOOPSCOPE_DASHBOARDS="$ROOT/grafana/dashboards" \
        LOOPSCOPE_SCRAPE_INTERVAL=5s \
        "$GRAFANA_BIN" --homepath "$GRAFANA_HOME"
fi

# ---------------------------------------------------------------------------- ready?

say "waiting for ${NAMES[*]} (up to ${READY_TIMEOUT}s; logs in ${LOG_DIR#"$ROOT"/})"
declare -A ready=()
deadline=$((SECONDS + READY_TIMEOUT))
while [[ ${#ready[@]} -lt ${#NAMES[@]} ]]; do
    for name in "${NAMES[@]}"; do
        [[ -n "${ready[$name]:-}" ]] && continue
        if ! is_alive "${PID[$name]}"; then
            status=0
            wait "${PID[$name]}" 2>/dev/null || status=$?
            fail "$name" "exited during startup (status $status)"
        fi
        if curl -fsS -o /dev/null --max-time 1 "${READY_URL[$name]}" 2>/dev/null; then
            ready[$name]=1
        fi
    done
    [[ ${#ready[@]} -lt ${#NAMES[@]} ]] || break
    if [[ $SECONDS -ge $deadline ]]; then
        for name in "${NAMES[@]}"; do
            if [[ -z "${ready[$name]:-}" ]]; then
                err "$name not ready after ${READY_TIMEOUT}s (${READY_URL[$name]})"
                show_log_tail "$name"
            fi
        done
        shut_down
        exit 1
    fi
    sleep 0.25
done

# ---------------------------------------------------------------------------- report

row() { printf '  %-19s %-27s %s\n' "$@"; }
say ""
say "loopscope is up"
say ""
row NAME APP METRICS
row gateway "$(svc_url "$GATEWAY_PORT")" "$(svc_url "$GATEWAY_ADMIN_PORT")/metrics"
row worker-async "$(svc_url "$WORKER_ASYNC_PORT")" "$(svc_url "$WORKER_ASYNC_ADMIN_PORT")/metrics"
row worker-threadpool "$(svc_url "$WORKER_THREADPOOL_PORT")" "$(svc_url "$WORKER_THREADPOOL_ADMIN_PORT")/metrics"
row backend "$(svc_url "$BACKEND_PORT")" "$(svc_url "$BACKEND_ADMIN_PORT")/metrics"
[[ $use_prometheus -eq 1 ]] && row prometheus "http://127.0.0.1:$PROMETHEUS_PORT" "Prometheus UI, targets: http://127.0.0.1:$PROMETHEUS_PORT/targets"
[[ $use_grafana -eq 1 ]] && row grafana "http://127.0.0.1:$GRAFANA_PORT" "dashboards: the loopscope folder"
[[ $use_spotlight -eq 1 ]] && row spotlight "http://localhost:$SPOTLIGHT_PORT" "Spotlight UI: Sentry errors and traces"
say ""
say "Try:"
say "  curl '$(svc_url "$GATEWAY_PORT")/api/compare?kind=io&ms=100'"
say "  curl '$(svc_url "$GATEWAY_PORT")/api/fanout?n=10&ms=100&mode=limited&limit=5'"
say ""
say "Logs: ${LOG_DIR#"$ROOT"/}/<name>.log"

if [[ $BACKGROUND -eq 1 ]]; then
    DETACHED=1
    say "Running in the background; stop with: scripts/down.sh (make down)"
    exit 0
fi

write_pidfile up "$$" "up.sh"
say "Ctrl-C stops everything."

# ---------------------------------------------------------------------------- supervise

while :; do
    # Returns when a child exits (with its status), or early when a trapped signal
    # arrives, in which case the trap stops everything and exits.
    waited=0
    wait -n || waited=$?
    for name in "${NAMES[@]}"; do
        if ! is_alive "${PID[$name]}"; then
            status=0
            wait "${PID[$name]}" 2>/dev/null || status=$?
            # 127: this is the child `wait -n` reaped.
            [[ $status -eq 127 ]] && status=$waited
            fail "$name" "exited unexpectedly (status $status); stopping the others"
        fi
    done
done
