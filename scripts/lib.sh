# shellcheck shell=bash
# Process helpers shared by scripts/up.sh and scripts/down.sh. Source it; it runs nothing.
#
# State of a local run lives in $UP_DIR (default target/up):
#   logs/<name>.log   stdout+stderr of each process
#   pids/<name>.pid   "PID MATCH": MATCH is a string found in the process's command line,
#                     checked before signalling so a recycled PID is never killed
#   pids/up.pid       the foreground scripts/up.sh itself (absent with --background)

UP_DIR="${UP_DIR:-$ROOT/target/up}"
LOG_DIR="$UP_DIR/logs"
PID_DIR="$UP_DIR/pids"
STOP_TIMEOUT="${STOP_TIMEOUT:-15}"

# Processes stopped last, so the services' final reports still reach them.
INFRA_NAMES=(prometheus spotlight)

say() { printf '%s\n' "$*"; }
err() { printf 'error: %s\n' "$*" >&2; }

# is_alive PID: the process exists and is not a zombie (an exited child not yet reaped).
is_alive() {
    local pid="$1" stat
    kill -0 "$pid" 2>/dev/null || return 1
    if [[ -r "/proc/$pid/stat" ]]; then
        { stat="$(<"/proc/$pid/stat")"; } 2>/dev/null || return 1
        stat="${stat##*) }"
        [[ "${stat%% *}" != Z ]] || return 1
    fi
    return 0
}

# pid_matches PID MATCH: PID's command line contains MATCH (always true without /proc).
pid_matches() {
    local pid="$1" match="$2" cmdline
    [[ -r "/proc/$pid/cmdline" ]] || return 0
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *"$match"* ]]
}

# write_pidfile NAME PID MATCH
write_pidfile() {
    mkdir -p "$PID_DIR"
    printf '%s %s\n' "$2" "$3" >"$PID_DIR/$1.pid"
}

# read_pidfile NAME: sets PF_PID and PF_MATCH; fails when there is no pid file.
read_pidfile() {
    PF_PID=""
    PF_MATCH=""
    [[ -f "$PID_DIR/$1.pid" ]] || return 1
    read -r PF_PID PF_MATCH <"$PID_DIR/$1.pid" || true
    [[ "$PF_PID" =~ ^[0-9]+$ ]]
}

# live_pid NAME: prints the PID from NAME's pid file if that process still runs.
live_pid() {
    read_pidfile "$1" || return 1
    if ! is_alive "$PF_PID" || ! pid_matches "$PF_PID" "$PF_MATCH"; then
        return 1
    fi
    printf '%s\n' "$PF_PID"
}

# recorded_names: names of all pid files except up.pid, services first, infra last.
recorded_names() {
    local f name infra=" ${INFRA_NAMES[*]} " last=()
    [[ -d "$PID_DIR" ]] || return 0
    for f in "$PID_DIR"/*.pid; do
        [[ -e "$f" ]] || continue
        name="$(basename "$f" .pid)"
        [[ "$name" == up ]] && continue
        if [[ "$infra" == *" $name "* ]]; then last+=("$name"); else say "$name"; fi
    done
    for name in "${last[@]}"; do say "$name"; done
}

# stop_group NAME=PID...: SIGTERM to all, wait up to $STOP_TIMEOUT s for all, then SIGKILL
# the rest. Does not reap: a caller that is the parent should `wait` afterwards.
stop_group() {
    local entry name pid deadline alive
    local -a names=() pids=()
    for entry in "$@"; do
        name="${entry%%=*}"
        pid="${entry#*=}"
        if is_alive "$pid"; then
            names+=("$name")
            pids+=("$pid")
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    [[ ${#pids[@]} -eq 0 ]] && return 0
    say "stopping ${names[*]} (SIGTERM)"

    deadline=$((SECONDS + STOP_TIMEOUT))
    while :; do
        alive=0
        for pid in "${pids[@]}"; do
            if is_alive "$pid"; then alive=1; break; fi
        done
        [[ $alive -eq 0 ]] && return 0
        [[ $SECONDS -ge $deadline ]] && break
        sleep 0.1
    done

    local i
    for i in "${!pids[@]}"; do
        if is_alive "${pids[$i]}"; then
            err "${names[$i]} (pid ${pids[$i]}) still running after ${STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
    done
}

# stop_all NAME=PID...: services first, then Prometheus and Spotlight.
stop_all() {
    local entry infra=" ${INFRA_NAMES[*]} "
    local -a first=() last=()
    for entry in "$@"; do
        if [[ "$infra" == *" ${entry%%=*} "* ]]; then last+=("$entry"); else first+=("$entry"); fi
    done
    [[ ${#first[@]} -gt 0 ]] && stop_group "${first[@]}"
    [[ ${#last[@]} -gt 0 ]] && stop_group "${last[@]}"
    return 0
}

# port_in_use PORT: something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# show_log_tail NAME [LINES]
show_log_tail() {
    local log="$LOG_DIR/$1.log"
    if [[ -s "$log" ]]; then
        printf -- '--- last %s lines of %s ---\n' "${2:-20}" "${log#"$ROOT"/}" >&2
        tail -n "${2:-20}" "$log" >&2
        printf -- '---\n' >&2
    fi
}
