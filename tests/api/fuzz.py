#!/usr/bin/env python3
"""Property-based tests of every route against docs/openapi.yaml (schemathesis).

Starts the real binaries (target/debug, or $LOOPSCOPE_BIN_DIR) on free loopback ports,
fetches the description from each admin port (the one the binary serves), and runs
schemathesis on each service's operations: no 5xx (except the deliberate /fault routes),
every status and content type documented, every body of the documented shape, and invalid
input refused with a 4xx. Exit status: 0 when every run passed.

Limits are set small so generated `ms` values cost little: every service accepts at most
300 ms and a fan-out at most 10 calls. Deliberate 5xx (/fault/*, the backend's injected
errors) are held to the documented statuses instead of to "no 5xx".
"""
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("LOOPSCOPE_BIN_DIR", ROOT / "target" / "debug"))
ST = Path(sys.executable).with_name("st")
CHECKS = ",".join([
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
])


class Service:
    def __init__(self, name, *args):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LOOPSCOPE_", "SENTRY_"))}
        env.update(LOOPSCOPE_LOG_FORMAT="json", RUST_LOG="warn,loopscope=info,common=info")
        self.proc = subprocess.Popen(
            [str(BIN / name), "--port", "0", "--admin-port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        listening = threading.Event()
        self.app = self.admin = None

        def drain():
            # Read every line for the life of the process, or it blocks on a full pipe.
            for line in self.proc.stdout:
                if '"listening"' in line and not listening.is_set():
                    event = json.loads(line)
                    self.app, self.admin = event["app_addr"], event["admin_addr"]
                    listening.set()

        threading.Thread(target=drain, daemon=True).start()
        if not listening.wait(20):
            self.proc.kill()
            sys.exit(f"{name} did not start within 20 s")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def fuzz(label, service, tag, base, extra=()):
    cmd = [str(ST), "run", f"http://{service.admin}/openapi.yaml", "--url", base,
           *(("--include-tag", tag) if tag else ()), "--checks", CHECKS, "--max-examples", "25",
           "--seed", "11", "--request-timeout", "15", "--workers", "1", *extra]
    print(f"==> {label}: {' '.join(cmd)}", flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode == 0


def main():
    started = []
    try:
        backend = Service("backend", "--workers", "1", "--latency-ms", "5", "--max-ms", "300")
        started.append(backend)
        workers = {}
        for handling in ("async", "threadpool"):
            workers[handling] = Service(
                "worker", "--handling", handling, "--workers", "1", "--max-ms", "300",
                "--backend-url", f"http://{backend.app}")
            started.append(workers[handling])
        gateway = Service(
            "gateway", "--workers", "1", "--upstream-timeout-ms", "3000", "--max-ms", "300",
            "--max-fanout", "10", "--fanout-deadline-ms", "5000",
            "--worker-async-url", f"http://{workers['async'].app}",
            "--worker-threadpool-url", f"http://{workers['threadpool'].app}")
        started.append(gateway)
        # The deliberate 5xx are what those routes are for: documented statuses only.
        faults = ("--exclude-path-regex", "^/fault/")
        on_purpose = ("--exclude-checks", "not_a_server_error")
        results = [
            fuzz("worker async", workers["async"], "worker", f"http://{workers['async'].app}", faults),
            fuzz("worker threadpool", workers["threadpool"], "worker",
                 f"http://{workers['threadpool'].app}", faults),
            fuzz("worker faults", workers["async"], None, f"http://{workers['async'].app}",
                 ("--include-path-regex", "^/fault/", *on_purpose)),
            fuzz("gateway", gateway, "gateway", f"http://{gateway.app}"),
            fuzz("backend", backend, "backend", f"http://{backend.app}", on_purpose),
            fuzz("probes", backend, "probes", f"http://{backend.app}"),
            fuzz("admin", gateway, "admin", f"http://{gateway.admin}"),
        ]
    finally:
        for s in started:
            s.stop()
    failed = results.count(False)
    print(f"==> schemathesis: {len(results) - failed} of {len(results)} runs passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
