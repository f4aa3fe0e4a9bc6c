"""The bench's sections: instrumentation overhead (with each layer's cost, the Sentry sample
rates, the stall detector, and the seeds' hello beside it), handling modes (loopscope and
the seeds' stack), and scrape cost."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from . import servers
from .measure import Point, Settings, log, run_points
from .scrape import scrape_section

OVERHEAD_C = 50      # fixed concurrency of the overhead comparison
# The worker's hello-class route: no timer (io?ms=0 waits for the timer's millisecond tick,
# which bounds it by the clock, not by CPU), the JSON work report, every layer.
HELLO_PATH = "/work/cpu?ms=0"
IO0_PATH = "/work/io?ms=0"
IO10_C = 100         # concurrency of the 10 ms work comparison
MODES_C = (10, 100, 1000)
WORK_MS = 10
BLOCKING_THREADS = 40  # the worker's default, and anyio's default thread limit
# Switchable layers, in the order a request meets them (see --disable-layers).
LAYERS = ("sentry", "access-log", "http-metrics", "in-flight", "stall")


@dataclass
class Context:
    bin_dir: Path
    python: str
    log_dir: Path
    settings: Settings

    @property
    def cpu(self) -> int | None:
        return self.settings.server_cpu


def _start_all(started: dict[str, servers.Server]) -> None:
    for server in started.values():
        servers.wait_ready(server)


def _stop_all(started: dict[str, servers.Server]) -> None:
    for server in started.values():
        servers.stop(server)


def _only(layer: str) -> dict:
    others = [other for other in LAYERS if other != layer]
    return {"disable": others} if layer == "sentry" else {"disable": others, "dsn": None}


def overhead(ctx: Context) -> list[dict]:
    """Bare actix-web hello vs the worker's cheapest route with everything on, then with
    each layer off in turn, at one fixed concurrency; the 10 ms work at another."""
    w = lambda name, **kw: servers.worker(name, ctx.bin_dir, "async", ctx.cpu, ctx.log_dir, **kw)  # noqa: E731
    started = {
        "bare": servers.bench_hello("bench-hello", ctx.bin_dir, ctx.cpu, ctx.log_dir),
        "full": w("worker-full"),
        "traces-0": w("worker-traces-0", traces=0.0),
        "traces-1": w("worker-traces-1", traces=1.0),
        "no-dsn": w("worker-no-dsn", dsn=None),
        "sentry-down": w("worker-sentry-down", dsn=servers.CLOSED_DSN),
        # Everything on, but RUST_LOG=warn: the request span and access line are filtered
        # out, so this separates formatting the log from the rest of tracing-actix-web.
        "quiet-logs": w("worker-quiet-logs", rust_log="warn"),
        **{f"minus-{layer}": w(f"worker-minus-{layer}", disable=[layer]) for layer in LAYERS},
        # The route with one layer alone (Sentry's with its client, the others without).
        **{f"only-{layer}": w(f"worker-only-{layer}", **_only(layer)) for layer in LAYERS},
        "none": w("worker-none", dsn=None, disable=list(LAYERS)),
        "fastapi-asgi": servers.fastapi("fastapi-asgi", ctx.python, "asgi", ctx.cpu, ctx.log_dir),
        "fastapi-base": servers.fastapi("fastapi-base", ctx.python, "base", ctx.cpu, ctx.log_dir),
    }
    try:
        _start_all(started)
        points = []
        for name, server in started.items():
            path = {"bare": "/", "fastapi-asgi": "/hello", "fastapi-base": "/hello"}.get(
                name, HELLO_PATH)
            points.append(Point(f"hello/{name}", path, OVERHEAD_C, server, info={"config": name}))
        # The io route with a zero timer, for comparison with the earlier runs.
        points.append(Point("hello/full-io", IO0_PATH, OVERHEAD_C, started["full"],
                            info={"config": "full-io"}))
        points.append(Point("io10/bare", f"/io?ms={WORK_MS}", IO10_C, started["bare"],
                            info={"config": "bare"}))
        points.append(Point("io10/full", f"/work/io?ms={WORK_MS}", IO10_C, started["full"],
                            info={"config": "full"}))
        log("== overhead: bare actix-web vs loopscope, layer by layer")
        run_points("overhead", points, ctx.settings)
        return [p.result() for p in points]
    finally:
        _stop_all(started)


def modes(ctx: Context) -> list[dict]:
    """io of 10 ms at each concurrency, async / threadpool / block, loopscope and FastAPI.

    Each (stack, mode, concurrency) has a process of its own, started once: the threads and
    memory it reports are that load's alone (a process keeps what an earlier, heavier load
    made it grow). Block gets a fresh process for every run instead (see measure.py)."""
    def server(stack: str, mode: str, c: int) -> servers.Server:
        name = f"{stack}-{mode}-c{c}"
        if stack == "bare":
            return servers.bench_hello(name, ctx.bin_dir, ctx.cpu, ctx.log_dir)
        if stack == "loopscope":
            extra = ["--blocking-threads", str(BLOCKING_THREADS)]
            handling = "threadpool" if mode == "threadpool" else "async"
            return servers.worker(name, ctx.bin_dir, handling, ctx.cpu, ctx.log_dir, extra=extra)
        return servers.fastapi(name, ctx.python, stack.split("-")[1], ctx.cpu, ctx.log_dir)

    paths = {
        "loopscope": {"async": "/work/io", "threadpool": "/work/io", "block": "/work/block"},
        "fastapi-asgi": {"async": "/async/io", "threadpool": "/def/io", "block": "/async/block"},
    }
    paths["fastapi-base"] = paths["fastapi-asgi"]
    paths["bare"] = {"async": "/io"}
    started: dict[str, servers.Server] = {}
    try:
        points = []
        for c in MODES_C:
            for stack in ("bare", "loopscope", "fastapi-asgi", "fastapi-base"):
                # Bare actix-web: the honest ceiling of async io on one core.
                for mode in paths[stack]:
                    info = {"stack": stack, "mode": mode, "work_ms": WORK_MS,
                            # What can really be in flight: the pool's threads (1 worker).
                            "capacity": BLOCKING_THREADS if mode == "threadpool" else None}
                    path = f"{paths[stack][mode]}?ms={WORK_MS}"
                    key = f"modes/{stack}/{mode}/c{c}"
                    if mode == "block":
                        fresh = lambda stack=stack, c=c: server(stack, "block", c)  # noqa: E731
                        points.append(Point(key, path, c, fresh=fresh, info=info))
                    else:
                        started[key] = server(stack, mode, c)
                        points.append(Point(key, path, c, started[key], info=info))
        _start_all(started)
        log("== handling modes: io 10 ms at concurrency " + ", ".join(map(str, MODES_C)))
        run_points("modes", points, ctx.settings)
        return [p.result() for p in points]
    finally:
        _stop_all(started)


def two_workers(ctx: Context) -> list[dict]:
    """Bare and the worker with 2 workers, on both cores, wrk beside them (no pinning): the
    ratios of section 1 and the c=1000 io again, to show they are not an artefact of
    pinning one server to one core."""
    s = dataclasses.replace(ctx.settings, server_cpu=ctx.settings.all_cpus,
                            load_cpu=ctx.settings.all_cpus)
    cpus = s.server_cpu
    w = lambda name, **kw: servers.worker(name, ctx.bin_dir, "async", cpus, ctx.log_dir,  # noqa: E731
                                          workers=2, **kw)
    started = {
        "bare": servers.bench_hello("bench-hello-2w", ctx.bin_dir, cpus, ctx.log_dir, workers=2),
        "full": w("worker-full-2w"),
        "none": w("worker-none-2w", dsn=None, disable=list(LAYERS)),
    }
    try:
        _start_all(started)
        points = [Point(f"two/hello/{name}", "/" if name == "bare" else HELLO_PATH, OVERHEAD_C,
                        server, info={"config": name}) for name, server in started.items()]
        points += [Point(f"two/io1000/{name}", f"/io?ms={WORK_MS}" if name == "bare"
                         else f"/work/io?ms={WORK_MS}", 1000, started[name],
                         info={"config": name}) for name in ("bare", "full")]
        log("== two workers on both cores: the ratios again, unpinned")
        run_points("two-workers", points, s)
        return [p.result() for p in points]
    finally:
        _stop_all(started)


def scrape(ctx: Context, scrapes: int) -> list[dict]:
    log("== scrape cost: /metrics after every route, status and worker, idle and under load")
    return scrape_section(ctx.bin_dir, ctx.python, ctx.cpu, ctx.log_dir, ctx.settings,
                          scrapes, OVERHEAD_C)
