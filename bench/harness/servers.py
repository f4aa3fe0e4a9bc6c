"""Starting and stopping the servers under test, each pinned to the server core.

Every server gets free ports, its own log file (stderr; the worker's JSON access log goes to
/dev/null: the write is paid, the disk is not), no inherited LOOPSCOPE_* / SENTRY_*
variables, and is stopped by its own pid.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

# A DSN whose host refuses connections: Sentry unreachable (the transport backs off).
CLOSED_DSN = "http://public@127.0.0.1:9/0"
# The DSN workers report to unless told otherwise: the bench's Sentry sink once it runs
# (`sentry_sink`), a healthy Sentry that answers 200 at once.
default_dsn: str = CLOSED_DSN

BENCH_DIR = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    url: str
    admin_url: str | None = None
    health_path: str = "/healthz"
    # What a reader needs to reproduce it by hand.
    command: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LOOPSCOPE_", "SENTRY_"))}
    env.update(extra or {})
    return env


def _spawn(name: str, cmd: list[str], cpu: int | str | None, log_dir: Path,
           env: dict[str, str]) -> subprocess.Popen:
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{name}.log", "ab") as log:
        # taskset execs the command: the pid is the server's own.
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=log, env=env, start_new_session=True)


def get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_ready(server: Server, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode} at start "
                               f"(see its log under target/bench/logs): {' '.join(server.command)}")
        try:
            if get(server.url + server.health_path, timeout=1.0)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{server.name} not ready after {timeout_s:.0f} s")


def settle(server: Server, timeout_s: float = 60.0) -> None:
    """Waits until the server answers its health check at once again: requests a load left
    queued (a blocked event loop drains slowly) must not leak into the next measurement."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        try:
            if get(server.url + server.health_path, timeout=5.0)[0] == 200 \
                    and time.monotonic() - t0 < 0.05:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{server.name} did not settle within {timeout_s:.0f} s")


def stop(server: Server, kill: bool = False) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            server.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()


def loopscope(name: str, bin_dir: Path, binary: str, args: list[str], cpu: int | str | None,
              log_dir: Path, rust_log: str = "info") -> Server:
    """A loopscope service with JSON logs, a short drain, and free app and admin ports."""
    port, admin = free_port(), free_port()
    cmd = [str(bin_dir / binary), "--port", str(port), "--admin-port", str(admin),
           "--shutdown-grace-secs", "1", "--sentry-timeout-ms", "500", *args]
    env = _clean_env({"LOOPSCOPE_LOG_FORMAT": "json", "RUST_LOG": rust_log})
    proc = _spawn(name, cmd, cpu, log_dir, env)
    return Server(name, proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}",
                  command=cmd)


def worker(name: str, bin_dir: Path, handling: str, cpu: int | str | None, log_dir: Path, *,
           workers: int = 1, dsn: str | None = "default", traces: float | None = None,
           disable: list[str] | None = None, extra: list[str] | None = None,
           rust_log: str = "info") -> Server:
    args = ["--handling", handling, "--workers", str(workers)]
    if dsn == "default":
        dsn = default_dsn
    if dsn:
        args += ["--sentry-dsn", dsn]
    if traces is not None:
        args += ["--sentry-traces-sample-rate", f"{traces:g}"]
    if disable:
        args += ["--disable-layers", ",".join(disable)]
    return loopscope(name, bin_dir, "worker", args + (extra or []), cpu, log_dir, rust_log)


def bench_hello(name: str, bin_dir: Path, cpu: int | str | None, log_dir: Path,
                workers: int = 1) -> Server:
    port = free_port()
    cmd = [str(bin_dir / "bench-hello"), str(port), str(workers)]
    proc = _spawn(name, cmd, cpu, log_dir, _clean_env())
    return Server(name, proc, f"http://127.0.0.1:{port}", command=cmd)


def sentry_sink(bin_dir: Path, cpu: int | str | None, log_dir: Path) -> tuple[Server, str]:
    """bench-hello as the bench's Sentry (on the load core: its CPU is not the server's);
    the server and the DSN that reports to it."""
    server = bench_hello("sentry-sink", bin_dir, cpu, log_dir)
    return server, server.url.replace("http://", "http://public@") + "/1"


def envelopes_received(sink: Server) -> int:
    return int(get(sink.url + "/envelopes")[1])


def fastapi(name: str, python: str, variant: str, cpu: int | None, log_dir: Path) -> Server:
    """The seeds' stack: one uvicorn process (uvloop, httptools), no access log."""
    port = free_port()
    cmd = [python, "-m", "uvicorn", "app:app", "--app-dir", str(BENCH_DIR / "python"),
           "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--loop", "uvloop", "--http", "httptools", "--no-access-log",
           "--log-level", "warning"]
    env = _clean_env({"BENCH_MIDDLEWARE": variant, "PYTHONDONTWRITEBYTECODE": "1"})
    proc = _spawn(name, cmd, cpu, log_dir, env)
    return Server(name, proc, f"http://127.0.0.1:{port}", command=cmd)
