#!/usr/bin/env bash
# make demo: start the local stack (release binaries), run every experiment, print the
# comparison table, write the HTML report under target/demo, stop the stack.
#
# Exit status: 0 when every experiment passed; 1 when one failed or the stack could not
# start (the reason is printed); 130 on Ctrl-C (the stack is stopped either way).
#
# Environment: BIN_DIR [target/release], DEMO_DIR [target/demo], EXPERIMENTS [all],
# plus whatever scripts/up.sh reads (ports, WITH_PROMETHEUS, WITH_SPOTLIGHT).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${BIN_DIR:-$ROOT/target/release}"
DEMO_DIR="${DEMO_DIR:-$ROOT/target/demo}"
EXPERIMENTS="${EXPERIMENTS:-all}"
export BIN_DIR

if [[ ! -x "$BIN_DIR/loadgen" ]]; then
    printf 'error: %s/loadgen is missing: build first (make release)\n' "$BIN_DIR" >&2
    exit 1
fi

stop_stack() { "$ROOT/scripts/down.sh" >/dev/null 2>&1 || true; }

if ! "$ROOT/scripts/up.sh" --background; then
    printf '\nerror: the stack did not start (see above); nothing was measured\n' >&2
    stop_stack
    exit 1
fi
trap stop_stack EXIT
trap 'exit 130' INT TERM

url() { printf 'http://127.0.0.1:%s' "$1"; }
status=0
"$BIN_DIR/loadgen" experiment "$EXPERIMENTS" --report "$DEMO_DIR" \
    --gateway-url "$(url "${GATEWAY_PORT:-8080}")" \
    --worker-async-url "$(url "${WORKER_ASYNC_PORT:-8081}")" \
    --worker-threadpool-url "$(url "${WORKER_THREADPOOL_PORT:-8082}")" \
    --worker-async-admin-url "$(url "${WORKER_ASYNC_ADMIN_PORT:-9081}")" \
    --worker-threadpool-admin-url "$(url "${WORKER_THREADPOOL_ADMIN_PORT:-9082}")" || status=$?

printf 'raw numbers: %s/report.json\n' "$DEMO_DIR"
if [[ $status -ne 0 ]]; then
    printf 'at least one experiment failed (exit %s): see its checks above\n' "$status" >&2
    exit 1
fi
