#!/usr/bin/env bash
# Install the tools loopscope's tests and `make up` use, idempotently.
#
#   scripts/install-tools.sh [all|prometheus|spotlight|shellcheck|wrk|valgrind|lint]...   (default: all)
#
# - prometheus, promtool, shellcheck, wrk (for `make bench`; not in `all`) and valgrind
#   (for `make test-cost`; not in `all`):
#   Debian packages. Installed with apt-get only when missing from PATH and
#   running as root; otherwise the script says how to install them.
#   (`apt-get install prometheus` gives 2.42 and does not
#   start a daemon in a container; on a systemd host it enables
#   prometheus.service on :9090, which `make up` would then find in use.)
# - Spotlight (Sentry's local receiver): `npm ci` in tools/spotlight, pinned by
#   tools/spotlight/package-lock.json. Skipped when node_modules was installed
#   from the same package.json + package-lock.json (hash stamp), so a second
#   run takes well under a second. See tools/spotlight/README.md for the
#   Spotlight commands.
# - lint: cargo-machete and cargo-deny for `make lint`, `cargo install --locked`
#   from crates.io at the versions pinned below (CARGO_MACHETE_VERSION,
#   CARGO_DENY_VERSION; the Makefile passes its own). Skipped when the installed
#   binary reports that version; the first install compiles for a few minutes.
#
# Exit status: 0 when everything asked for is available, 1 otherwise (after
# trying everything and listing what is missing and how to get it).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SPOTLIGHT_DIR="$ROOT/tools/spotlight"
SPOTLIGHT_STAMP="$SPOTLIGHT_DIR/node_modules/.loopscope-stamp"
NODE_MIN_MAJOR=20
CARGO_MACHETE_VERSION="${CARGO_MACHETE_VERSION:-0.9.2}"
CARGO_DENY_VERSION="${CARGO_DENY_VERSION:-0.20.2}"

missing=()

log() { printf '==> %s\n' "$*"; }
warn() { printf 'install-tools: %s\n' "$*" >&2; }

have() { command -v "$1" >/dev/null 2>&1; }

apt_install() {
    # apt_install PACKAGE...: install Debian packages (root only, caller checks).
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    log "apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

can_apt() { [[ $(id -u) -eq 0 ]] && have apt-get; }

# want_deb PACKAGE COMMAND...: all COMMANDs on PATH, else queue PACKAGE for apt-get.
apt_pkgs=()
apt_cmds=()
want_deb() {
    local pkg="$1"
    shift
    local cmd absent=()
    for cmd in "$@"; do
        have "$cmd" || absent+=("$cmd")
    done
    [[ ${#absent[@]} -eq 0 ]] && return 0
    if can_apt; then
        apt_pkgs+=("$pkg")
        apt_cmds+=("$pkg:${absent[*]}")
    else
        missing+=("${absent[*]}: not on PATH and not root; install with 'sudo apt-get install -y $pkg' (Debian/Ubuntu) or put the binaries on PATH")
    fi
}

# One apt-get run for everything queued by want_deb.
install_debs() {
    [[ ${#apt_pkgs[@]} -eq 0 ]] && return 0
    apt_install "${apt_pkgs[@]}"
    local entry cmd
    for entry in "${apt_cmds[@]}"; do
        for cmd in ${entry#*:}; do
            have "$cmd" || missing+=("$cmd: 'apt-get install ${entry%%:*}' did not provide it")
        done
    done
}

install_prometheus() {
    want_deb prometheus prometheus promtool
}

install_shellcheck() {
    want_deb shellcheck shellcheck
}

install_wrk() {
    want_deb wrk wrk
}

# cargo_tool CRATE VERSION: `cargo install --locked CRATE@VERSION` unless `cargo <sub>
# --version` already prints that version (the subcommand is the crate name less `cargo-`).
cargo_tool() {
    local crate="$1" version="$2" sub="${1#cargo-}"
    if cargo "$sub" --version 2>/dev/null | grep -qwF -- "$version"; then
        return 0
    fi
    if ! have cargo; then
        missing+=("$crate: needs cargo (https://rustup.rs)")
        return 0
    fi
    log "cargo install --locked $crate@$version"
    if ! cargo install --locked --quiet "$crate@$version"; then
        missing+=("$crate: 'cargo install --locked $crate@$version' failed")
    fi
}

install_lint() {
    cargo_tool cargo-machete "$CARGO_MACHETE_VERSION"
    cargo_tool cargo-deny "$CARGO_DENY_VERSION"
}

install_valgrind() {
    want_deb valgrind valgrind
}

spotlight_hash() {
    cat "$SPOTLIGHT_DIR/package.json" "$SPOTLIGHT_DIR/package-lock.json" | sha256sum | cut -d' ' -f1
}

install_spotlight() {
    local want
    want="$(spotlight_hash)"
    if [[ -x "$SPOTLIGHT_DIR/node_modules/.bin/spotlight" && -f "$SPOTLIGHT_STAMP" ]] &&
        [[ "$(<"$SPOTLIGHT_STAMP")" == "$want" ]]; then
        return 0
    fi

    if ! have node || ! have npm; then
        missing+=("spotlight: needs Node.js >= $NODE_MIN_MAJOR with npm (https://nodejs.org/en/download, or nvm); then run 'make spotlight'")
        return 0
    fi
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    if [[ "$major" -lt $NODE_MIN_MAJOR ]]; then
        missing+=("spotlight: Node.js $(node --version) is too old, @spotlightjs/spotlight needs >= $NODE_MIN_MAJOR")
        return 0
    fi

    log "npm ci in tools/spotlight"
    (cd "$SPOTLIGHT_DIR" && npm ci --no-audit --no-fund --loglevel=error)
    printf '%s\n' "$want" >"$SPOTLIGHT_STAMP"
}

main() {
    local what=("$@")
    [[ ${#what[@]} -eq 0 ]] && what=(all)
    local w
    for w in "${what[@]}"; do
        case "$w" in
        all)
            install_prometheus
            install_shellcheck
            install_spotlight
            ;;
        prometheus) install_prometheus ;;
        shellcheck) install_shellcheck ;;
        spotlight) install_spotlight ;;
        wrk) install_wrk ;;
        lint) install_lint ;;
        valgrind) install_valgrind ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
            return 0
            ;;
        *)
            warn "unknown tool '$w' (expected all, prometheus, spotlight, shellcheck, wrk, valgrind, lint)"
            return 2
            ;;
        esac
    done
    install_debs

    if [[ ${#missing[@]} -gt 0 ]]; then
        warn "missing tools:"
        local m
        for m in "${missing[@]}"; do
            warn "  - $m"
        done
        return 1
    fi
}

main "$@"
