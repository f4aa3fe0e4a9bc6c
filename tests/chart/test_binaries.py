"""The env the chart renders is env the binaries accept: each service's container runs with
exactly its rendered env (ports moved to free loopback ports), turns ready, serves /metrics
where the scrape annotation says, and drains on SIGTERM. Needs the built binaries (make
build, which `make test` runs first); skipped without them."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, SERVICES, container_env, render

BIN_DIR = Path(os.environ.get("BIN_DIR", ROOT / os.environ.get("CARGO_TARGET_DIR", "target") / "debug"))


def quiet_ports(n: int) -> list[int]:
    """`n` free ports below the kernel's ephemeral range, as tests/src/lib.rs's `quiet_ports`:
    a port `bind(0)` returned may go to another test's outgoing connection before the binary
    binds it, and the kernel hands out none below that range by itself."""
    try:
        start = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        start = 32768
    held: list[socket.socket] = []
    try:
        while len(held) < n:
            s = socket.socket()
            try:
                if start > 11024:
                    s.bind(("127.0.0.1", random.randrange(start - 10000, start)))
                else:
                    s.bind(("127.0.0.1", 0))
            except OSError:
                s.close()
                continue
            held.append(s)
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, ""
    except OSError:  # not listening yet
        return 0, ""


CASES = [(key, component, exposition) for key, component in SERVICES.items() for exposition in ("separate", "mounted")]


@pytest.mark.parametrize("key, component, exposition", CASES)
def test_binary_runs_with_the_rendered_env(key: str, component: str, exposition: str) -> None:
    binary = "worker" if key.startswith("worker") else key
    if not (BIN_DIR / binary).exists():
        pytest.skip(f"{BIN_DIR / binary} not built (make build)")
    http, admin = quiet_ports(2)
    r = render(
        {
            "ports": {"http": http, "admin": admin},
            key: {"metricsExposition": exposition},
            "sentry": {"dsn": "http://public@127.0.0.1:9/0", "timeoutMs": 500},
            "common": {"shutdownGraceSecs": 2, "shutdownDelaySecs": 1},
        }
    )
    pod = r.get("Deployment", f"loopscope-{component}")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    env = {k: v for k, v in container_env(container).items() if isinstance(v, str)}
    assert "SENTRY_DSN" in container_env(container)
    env["SENTRY_DSN"] = "http://public@127.0.0.1:9/0"  # from the Secret in a cluster
    env["LOOPSCOPE_HOST"] = "127.0.0.1"  # 0.0.0.0 in a pod; loopback here
    env["PATH"] = os.environ.get("PATH", "")
    command = [str(BIN_DIR / binary), *container["command"][1:]]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while get(f"http://127.0.0.1:{http}/readyz")[0] != 200:
            assert proc.poll() is None, f"{binary} exited: {proc.stderr.read() if proc.stderr else ''}"
            assert time.monotonic() < deadline, f"{binary} not ready"
            time.sleep(0.1)
        assert get(f"http://127.0.0.1:{http}/healthz")[0] == 200
        port = pod["metadata"]["annotations"]["prometheus.io/port"]
        path = pod["metadata"]["annotations"]["prometheus.io/path"]
        status, body = get(f"http://127.0.0.1:{port}{path}")
        assert status == 200 and "loopscope_build_info" in body, (exposition, port)
        if exposition == "mounted":
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", admin), timeout=1).close()
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=pod["spec"]["terminationGracePeriodSeconds"])
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert code == 0, proc.stderr.read() if proc.stderr else ""
