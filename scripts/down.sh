#!/usr/bin/env bash
# Stop what scripts/up.sh started (`make down`): with --background, or in the foreground in
# another terminal (then up.sh itself is asked to stop, as with Ctrl-C).
#
#   scripts/down.sh
#
# Services get SIGTERM first, then Prometheus and Spotlight; whatever still runs after
# STOP_TIMEOUT seconds (default 15) gets SIGKILL. A PID is signalled only if its command
# line still matches what up.sh started. Exit status 0, also when nothing was running.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"

case "${1:-}" in
"") ;;
-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
*) err "unknown argument: $1"; exit 2 ;;
esac

stopped_any=0

# A foreground up.sh: let it stop its children, as Ctrl-C would.
if pid="$(live_pid up)"; then
    say "asking scripts/up.sh (pid $pid) to stop"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_TIMEOUT * 2 + 5))
    while is_alive "$pid" && [[ $SECONDS -lt $deadline ]]; do sleep 0.1; done
    if is_alive "$pid"; then
        err "scripts/up.sh (pid $pid) did not stop; stopping its processes directly"
    fi
    stopped_any=1
fi
rm -f "$PID_DIR/up.pid"

names=()
entries=()
while read -r name; do
    [[ -n "$name" ]] || continue
    names+=("$name")
    if pid="$(live_pid "$name")"; then
        entries+=("$name=$pid")
    fi
done < <(recorded_names)

if [[ ${#entries[@]} -gt 0 ]]; then
    stop_all "${entries[@]}"
    stopped_any=1
fi
for name in "${names[@]}"; do rm -f "$PID_DIR/$name.pid"; done

if [[ $stopped_any -eq 1 ]]; then
    say "loopscope stopped"
else
    say "loopscope is not running"
fi
