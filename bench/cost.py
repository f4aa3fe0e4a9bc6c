"""`make test-cost`: instructions per request of the worker's cheapest route with every layer
on, counted by callgrind, against bench/callgrind-budget.json. Fails (exit 1) on a regression
of more than 10%; `--update` writes the measured figures as the new budget.

    python3 bench/cost.py [--bin-dir target/release] [--budget bench/callgrind-budget.json] [--update]

Standard library only. Needs valgrind and the release worker. What makes it repeatable:
a fixed environment (no inherited LOOPSCOPE_* / SENTRY_* / RUST_* variables), one worker,
a fixed request count on one kept-alive connection, Sentry's client on with traces sampled
at 0 or 1 (a random 10% would make the count random), and the stall threshold raised above what
callgrind's slowdown makes every poll take (the detector still times every poll).
Exit status: 0 within budget, 1 over it, 2 when something it needs is missing or broke.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.cost import TOLERANCE, Verdict, parse_totals, per_request

ROOT = Path(__file__).resolve().parent.parent
CLOSED_DSN = "http://public@127.0.0.1:9/0"
WARMUP = 50
SHORT, LONG = 100, 600

LAYERS = "sentry,access-log,http-metrics,in-flight,stall"  # every `--disable-layers` value

# name -> (path, extra worker flags). The names are the budget file's keys. The second keeps
# the route's own cost (query, work report, panic guard) apart from the layers'.
CONFIGS = {
    "cpu-ms0/every-layer-on/traces-0": (
        "/work/cpu?ms=0", ["--sentry-dsn", CLOSED_DSN, "--sentry-traces-sample-rate", "0"]),
    # Every request a sampled transaction, sent to a receiver that answers at once
    # (bench-hello's envelope route, outside callgrind): what each sampled request costs,
    # on the event loop and on the sender's thread. SINK_DSN is replaced by its address.
    "cpu-ms0/every-layer-on/traces-1-sent": (
        "/work/cpu?ms=0", ["--sentry-dsn", "SINK_DSN", "--sentry-traces-sample-rate", "1"]),
    "cpu-ms0/every-layer-off": ("/work/cpu?ms=0", ["--disable-layers", LAYERS]),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fixed_env() -> dict[str, str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C",
           "RUST_LOG": "info", "LOOPSCOPE_LOG_FORMAT": "json"}
    if "HOME" in os.environ:
        env["HOME"] = os.environ["HOME"]
    return env


def wait_ready(port: int, proc: subprocess.Popen, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {proc.returncode} at start")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                conn.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the worker was not ready within {timeout_s:.0f} s")


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


def wait_idle(proc: subprocess.Popen, timeout_s: float = 300.0) -> None:
    """Until the server stops spending CPU: start-up work on its own threads (the panic
    reporter warms the symboliser, ~600 M instructions under callgrind) would otherwise end
    inside the short run or the long one by chance, and the difference would measure it."""
    deadline = time.monotonic() + timeout_s
    last = cpu_ticks(proc.pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_ticks(proc.pid)
        if now - last <= 5:  # at most 10% of one CPU over the half second
            return
        last = now
    raise RuntimeError(f"the server was still busy {timeout_s:.0f} s after it was ready")


def drive(port: int, path: str, n: int) -> None:
    """`n` requests, one after another, on one kept-alive connection; each must be a 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        for _ in range(n):
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GET {path}: {resp.status} {body[:200]!r}")
    finally:
        conn.close()


def worker_cmd(bin_dir: Path, port: int, flags: list[str]) -> list[str]:
    return [str(bin_dir / "worker"), "--handling", "async", "--workers", "1",
            "--port", str(port), "--admin-port", str(free_port()),
            "--stall-threshold-ms", "60000", "--shutdown-grace-secs", "1",
            "--sentry-timeout-ms", "500", *flags]


def bare_cmd(bin_dir: Path, port: int, _flags: list[str]) -> list[str]:
    return [str(bin_dir / "bench-hello"), str(port), "1"]


def count(bin_dir: Path, path: str, flags: list[str], requests: int, out_dir: Path,
          server=worker_cmd) -> int:
    """Total instructions of one server process serving WARMUP + `requests` requests."""
    port = free_port()
    out = out_dir / f"callgrind.{len(list(out_dir.iterdir()))}.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
           *server(bin_dir, port, flags)]
    with open(out.with_suffix(".log"), "wb") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=log, env=fixed_env(), start_new_session=True)
    try:
        wait_ready(port, proc)
        wait_idle(proc)
        drive(port, path, WARMUP + requests)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return parse_totals(out.read_text(errors="replace"))


def measure(bin_dir: Path, path: str, flags: list[str], out_dir: Path,
            server=worker_cmd) -> float:
    short = count(bin_dir, path, flags, SHORT, out_dir, server)
    long = count(bin_dir, path, flags, LONG, out_dir, server)
    return per_request(short, SHORT, long, LONG)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin-dir", type=Path, default=ROOT / "target" / "release")
    p.add_argument("--budget", type=Path, default=ROOT / "bench" / "callgrind-budget.json")
    p.add_argument("--update", action="store_true", help="write the measured figures as budget")
    args = p.parse_args(argv)
    if not shutil.which("valgrind"):
        print("cost: valgrind is not on PATH (apt-get install valgrind)", file=sys.stderr)
        return 2
    if not (args.bin_dir / "worker").exists():
        print(f"cost: {args.bin_dir / 'worker'} is missing (cargo build --release -p worker)",
              file=sys.stderr)
        return 2
    budget = json.loads(args.budget.read_text()) if args.budget.exists() else {"budgets": {}}
    measured = {}
    failed = False
    sink_port = free_port()
    sink = subprocess.Popen([str(args.bin_dir / "bench-hello"), str(sink_port), "1"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    sink_dsn = f"http://public@127.0.0.1:{sink_port}/1"
    with sink, tempfile.TemporaryDirectory(prefix="loopscope-cost-") as tmp:
        for name, (path, flags) in CONFIGS.items():
            flags = [sink_dsn if f == "SINK_DSN" else f for f in flags]
            try:
                measured[name] = round(measure(args.bin_dir, path, flags, Path(tmp)))
            except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
                logs = "".join(f.read_text(errors="replace")[-2000:]
                               for f in sorted(Path(tmp).glob("*.log")))
                print(f"cost: {name}: {e}\n{logs}", file=sys.stderr)
                return 2
            limit = budget["budgets"].get(name)
            if limit is None:
                print(f"new: {name}: {measured[name]:,} instructions/request (no budget yet)")
                continue
            verdict = Verdict(name, measured[name], limit, budget.get("tolerance", TOLERANCE))
            print(verdict.line())
            failed |= not verdict.ok
        sink.terminate()
    # For reference, not budgeted (actix-web's own cost): the bare server's hello.
    if (args.bin_dir / "bench-hello").exists():
        with tempfile.TemporaryDirectory(prefix="loopscope-cost-") as tmp:
            try:
                bare = measure(args.bin_dir, "/", [], Path(tmp), bare_cmd)
                print(f"reference: bare actix-web hello (bench-hello): {bare:,.0f} "
                      f"instructions/request; over it: " + ", ".join(
                          f"{n} {v - bare:+,.0f}" for n, v in measured.items()))
            except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
                print(f"reference: bench-hello not measured: {e}", file=sys.stderr)
    if args.update:
        budget.update({
            "about": "Instructions per request (callgrind), `make test-cost`; fails above "
                     "budget * (1 + tolerance). Update with `make test-cost COST_UPDATE=1` "
                     "and say why in the commit.",
            "tolerance": budget.get("tolerance", TOLERANCE),
            "budgets": {**budget["budgets"], **measured},
        })
        args.budget.write_text(json.dumps(budget, indent=2) + "\n")
        print(f"cost: wrote {args.budget}")
        return 0
    if failed:
        print("cost: instructions per request grew past the budget: find the cut with "
              "`valgrind --tool=callgrind` and callgrind_annotate, or raise the budget with "
              "`make test-cost COST_UPDATE=1` and say why in the commit", file=sys.stderr)
        return 1
    missing = [n for n in CONFIGS if n not in budget["budgets"]]
    if missing:
        print(f"cost: no budget for {', '.join(missing)}: run `make test-cost COST_UPDATE=1`",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
