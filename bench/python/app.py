"""The seeds' stack, as its users write it: FastAPI on uvicorn, prometheus_client's
`make_asgi_app` mounted on /metrics, and HTTP metrics recorded by a middleware.

BENCH_MIDDLEWARE chooses how the middleware is written:
- `asgi`: a pure ASGI middleware, as prometheus-fastapi-instrumentator does it;
- `base`: `@app.middleware("http")`, Starlette's BaseHTTPMiddleware, as many tutorials show.
Both record the same series as loopscope's HTTP metrics (requests, duration histogram with
loopscope's buckets, in flight), labelled by route pattern, method and status; /metrics and
/healthz are left out, as loopscope leaves them out.

Endpoints, like the worker's: `/hello`; `/async/io?ms=N` (`async def`, asyncio.sleep);
`/def/io?ms=N` (`def`, time.sleep on the thread pool); `/async/block?ms=N` (time.sleep in an
`async def`: the seeds' bug); `/fault/status/{code}`; `/healthz`.
"""
import asyncio
import os
import threading
import time

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import Counter, Gauge, Histogram, make_asgi_app

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
           10.0, 30.0)
LABELS = ("endpoint", "method", "status")
REQUESTS = Counter("http_requests", "HTTP requests served", LABELS)
DURATION = Histogram("http_requests_duration_seconds", "Server-side latency", LABELS,
                     buckets=BUCKETS)
IN_FLIGHT = Gauge("http_requests_in_flight", "HTTP requests being served")
EXCLUDED = ("/metrics", "/healthz")
MAX_MS = 60_000


def endpoint_of(scope) -> str:
    # FastAPI puts the matched route in the scope: its pattern, never the raw path.
    route = scope.get("route")
    return getattr(route, "path", None) or "UNMATCHED"


def record(scope, status: int, started: float) -> None:
    labels = (endpoint_of(scope), scope["method"], str(status))
    REQUESTS.labels(*labels).inc()
    DURATION.labels(*labels).observe(time.perf_counter() - started)


class PrometheusMiddleware:
    """Pure ASGI: wraps `send` to see the status; no extra task, no body copy."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(EXCLUDED):
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_status)
        finally:
            IN_FLIGHT.dec()
            record(scope, status, started)


app = FastAPI()

if os.environ.get("BENCH_MIDDLEWARE", "asgi") == "base":
    @app.middleware("http")
    async def prometheus_middleware(request: Request, call_next):
        if request.scope["path"].startswith(EXCLUDED):
            return await call_next(request)
        status = 500
        started = time.perf_counter()
        IN_FLIGHT.inc()
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            IN_FLIGHT.dec()
            record(request.scope, status, started)
else:
    app.add_middleware(PrometheusMiddleware)

app.mount("/metrics", make_asgi_app())


def report(kind: str, ms: int, started: float) -> dict:
    return {"service": "fastapi", "kind": kind, "requested_ms": ms,
            "thread": threading.current_thread().name,
            "service_ms": round((time.perf_counter() - started) * 1e3, 3)}


@app.get("/hello")
async def hello():
    return {"Hello": "World"}


@app.get("/healthz")
async def healthz():
    return PlainTextResponse("ok")


@app.get("/async/io")
async def async_io(ms: int = Query(ge=0, le=MAX_MS)):
    started = time.perf_counter()
    await asyncio.sleep(ms / 1e3)
    return report("io", ms, started)


@app.get("/def/io")
def def_io(ms: int = Query(ge=0, le=MAX_MS)):
    started = time.perf_counter()
    time.sleep(ms / 1e3)
    return report("io", ms, started)


@app.get("/async/block")
async def async_block(ms: int = Query(ge=0, le=MAX_MS)):
    started = time.perf_counter()
    time.sleep(ms / 1e3)  # the bug on purpose: a blocking call on the event loop
    return report("block", ms, started)


@app.get("/fault/status/{code}")
async def fault_status(code: int):
    if not 200 <= code <= 599:
        return JSONResponse({"error": "bad_request"}, status_code=400)
    return JSONResponse({"status": code}, status_code=code)
