"""Measuring points: one URL at one concurrency on one server, repeated, runs interleaved.

A section starts its servers once; each repetition then visits every point in turn, so a
slow minute of the machine touches every configuration alike and the ratios between them
hold. A point whose load leaves a queue behind (a blocked event loop) gets a fresh server
for each run instead.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Callable

from . import servers, stats, wrk
from .procstat import Sampler


@dataclass
class Settings:
    duration_s: int
    reps: int
    warmup_s: int  # 0: no warm-up run
    timeout_s: int
    # A CPU number, or a list as taskset reads it ("0,1"); None: not pinned.
    server_cpu: int | str | None
    load_cpu: int | str | None
    # Every CPU the bench may use, for the section that runs on all of them.
    all_cpus: str | None = None


@dataclass
class Point:
    key: str
    path: str
    concurrency: int
    server: servers.Server | None = None
    # For points that need a fresh server each run: how to start one.
    fresh: Callable[[], servers.Server] | None = None
    info: dict = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)

    def result(self) -> dict:
        return {"key": self.key, "path": self.path, "concurrency": self.concurrency,
                **self.info, "summary": stats.summarise(self.runs), "runs": self.runs}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def one_run(server: servers.Server, point: Point, s: Settings, duration_s: int) -> dict:
    with Sampler(server.pid) as sampler:
        res = wrk.run(server.url + point.path, point.concurrency, duration_s, s.timeout_s,
                      s.load_cpu)
    usage = sampler.usage
    assert usage is not None
    figures = stats.run_figures(res.requests, res.duration_s, res.latency_us,
                                res.error_count, usage.cpu_s, usage.max_threads,
                                usage.max_rss_bytes, usage.voluntary_switches)
    figures["error_kinds"] = {k: v for k, v in res.errors.items() if v}
    return figures


def run_points(section: str, points: list[Point], s: Settings) -> None:
    for rep in range(s.reps):
        for p in points:
            server = p.fresh() if p.fresh else p.server
            assert server is not None
            p.info["server_command"] = " ".join(server.command)
            try:
                if p.fresh:
                    servers.wait_ready(server)
                elif rep == 0 and s.warmup_s:
                    one_run(server, p, s, s.warmup_s)
                    servers.settle(server)
                run = one_run(server, p, s, s.duration_s)
            finally:
                if p.fresh:
                    servers.stop(server, kill=True)
            if not p.fresh:
                servers.settle(server)
            p.runs.append(run)
            errors = f", {run['errors']} errors" if run["errors"] else ""
            log(f"  [{section}] {p.key} c={p.concurrency} run {rep + 1}/{s.reps}: "
                f"{run['rps']:,.0f} req/s, p99 {run['p99_ms']:.2f} ms, "
                f"{_fmt(run['cpu_us_per_req'])} CPU us/req{errors}")


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"
