"""Scrape cost: how long /metrics takes and how big it is once every route, status and worker
has a series, with the process idle and while a load runs.

Times are what a scraper sees on loopback (request sent to last byte read) over a kept-alive
connection, so they include the render and the HTTP round trip.
"""
from __future__ import annotations

import http.client
import statistics
import subprocess
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from . import servers, wrk
from .measure import Settings, log

STATUSES = (200, 201, 204, 301, 302, 304, 400, 401, 403, 404, 409, 418, 422, 429, 500, 501,
            502, 503, 504)
LOOPSCOPE_PATHS = ["/work/io?ms=1", "/work/cpu?ms=1", "/work/block?ms=1", "/work/call?ms=1",
                   "/work/call", "/fault/error", "/fault/panic", "/work/io?ms=abc",
                   "/work/nope?ms=1", "/nope"] + [f"/fault/status/{c}" for c in STATUSES]
FASTAPI_PATHS = ["/hello", "/async/io?ms=1", "/def/io?ms=1", "/async/block?ms=1",
                 "/async/io?ms=abc", "/nope"] + [f"/fault/status/{c}" for c in STATUSES]
ROUNDS = 4  # each path this many times, each on a new connection, so every worker sees it


def exercise(base: str, paths: list[str]) -> int:
    sent = 0
    for _ in range(ROUNDS):
        for path in paths:
            try:
                servers.get(base + path, timeout=10)
            except OSError:
                pass  # a 500 or a reset is part of the exercise
            sent += 1
        # 405: a method no route allows.
        try:
            urllib.request.urlopen(urllib.request.Request(base + paths[0], data=b"",
                                                          method="POST"), timeout=10)
        except OSError:
            pass
        sent += 1
    return sent


def series_count(body: bytes) -> int:
    return sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))


def scrape_once(conn: http.client.HTTPConnection, path: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    elapsed = time.perf_counter() - t0
    if resp.status != 200:
        raise RuntimeError(f"GET {path}: {resp.status}")
    return elapsed, body


def scrapes(url: str, count: int, interval_s: float, until: float | None = None) -> dict:
    """`count` scrapes `interval_s` apart (or until the monotonic time `until`)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    times, body = [], b""
    try:
        while (len(times) < count) if until is None else (time.monotonic() < until):
            elapsed, body = scrape_once(conn, parts.path)
            times.append(elapsed * 1e3)
            time.sleep(interval_s)
    finally:
        conn.close()
    times.sort()
    return {"scrapes": len(times), "median_ms": statistics.median(times) if times else None,
            "p99_ms": times[min(len(times) - 1, int(0.99 * len(times)))] if times else None,
            "max_ms": times[-1] if times else None, "bytes": len(body),
            "series": series_count(body)}


def under_load(url: str, load_url: str, s: Settings, concurrency: int) -> dict:
    cmd = wrk.command(load_url, concurrency, s.duration_s, s.timeout_s, s.load_cpu)
    load = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # let the connections open
        out = scrapes(url, 0, 0.05, until=time.monotonic() + max(s.duration_s - 0.5, 0.5))
    finally:
        stdout, _ = load.communicate(timeout=s.duration_s + s.timeout_s + 30)
    out["load_rps"] = wrk.parse(stdout).rps
    return out


def scrape_section(bin_dir: Path, python: str, cpu: int | None, log_dir: Path,
                   s: Settings, count: int, concurrency: int) -> list[dict]:
    backend = servers.loopscope("backend", bin_dir, "backend", ["--latency-ms", "1"], cpu, log_dir)
    common = dict(workers=2, extra=["--metrics-exposition", "both",
                                    "--backend-url", backend.url])
    started = {
        "async": servers.worker("worker-async-scrape", bin_dir, "async", cpu, log_dir, **common),
        "threadpool": servers.worker("worker-threadpool-scrape", bin_dir, "threadpool", cpu,
                                     log_dir, **common),
        "fastapi": servers.fastapi("fastapi-asgi-scrape", python, "asgi", cpu, log_dir),
    }
    try:
        for server in [backend, *started.values()]:
            servers.wait_ready(server)
        sent = {name: exercise(srv.url, FASTAPI_PATHS if name == "fastapi" else LOOPSCOPE_PATHS)
                for name, srv in started.items()}
        targets = [
            ("loopscope async worker, admin port", started["async"],
             started["async"].admin_url + "/metrics", "/work/io?ms=0"),
            ("loopscope async worker, mounted on the app port", started["async"],
             started["async"].url + "/metrics", "/work/io?ms=0"),
            ("loopscope threadpool worker, admin port", started["threadpool"],
             started["threadpool"].admin_url + "/metrics", "/work/io?ms=0"),
            ("FastAPI, make_asgi_app on the app port", started["fastapi"],
             started["fastapi"].url + "/metrics/", "/hello"),
        ]
        results = []
        for label, server, url, load_path in targets:
            idle = scrapes(url, count, 0.02)
            loaded = under_load(url, server.url + load_path, s, concurrency)
            name = next(n for n, srv in started.items() if srv is server)
            results.append({"target": label, "url_path": urlsplit(url).path,
                            "exercise_requests": sent[name], "idle": idle,
                            "under_load": {**loaded, "load_path": load_path,
                                           "concurrency": concurrency}})
            log(f"  [scrape] {label}: {idle['bytes'] / 1024:.0f} KiB, {idle['series']} series, "
                f"idle median {idle['median_ms']:.2f} ms, under load median "
                f"{loaded['median_ms']:.2f} ms / max {loaded['max_ms']:.2f} ms")
        return results
    finally:
        for server in [*started.values(), backend]:
            servers.stop(server)
