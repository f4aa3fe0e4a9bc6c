"""The arithmetic of the bench: medians of repeated runs, Little's law, ratios."""
from __future__ import annotations

import math
import statistics

# Figures of one run that are summarised by their median over the repetitions.
MEDIAN_FIELDS = ("rps", "p50_ms", "p99_ms", "cpu_us_per_req", "server_cpu_pct",
                 "threads", "rss_mb", "sleeps_per_100_req")


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(values) if values else None


def run_figures(requests: int, duration_s: float, latency_us: dict, errors: int,
                cpu_s: float, threads: int, rss_bytes: int, sleeps: int | None = None) -> dict:
    """The figures of one run, in the units the tables show. With no request answered there
    is no latency (wrk says 0)."""
    latency = latency_us if requests else {}
    return {
        "requests": requests,
        "rps": requests / duration_s if duration_s > 0 else 0.0,
        "p50_ms": latency.get("p50", math.nan) / 1e3,
        "p99_ms": latency.get("p99", math.nan) / 1e3,
        "errors": errors,
        "cpu_us_per_req": cpu_s * 1e6 / requests if requests else None,
        "server_cpu_pct": 100.0 * cpu_s / duration_s if duration_s > 0 else None,
        "threads": threads,
        "rss_mb": rss_bytes / 2**20,
        # Voluntary context switches of the server's threads per 100 requests.
        "sleeps_per_100_req": 100.0 * sleeps / requests if requests and sleeps is not None
        else None,
    }


def summarise(runs: list[dict]) -> dict:
    """Median of each figure over the runs; errors and requests are totals."""
    out = {k: median([r.get(k) for r in runs]) for k in MEDIAN_FIELDS}
    out["errors"] = sum(r.get("errors", 0) for r in runs)
    out["requests"] = sum(r.get("requests", 0) for r in runs)
    out["runs"] = len(runs)
    return out


def little_limit(concurrency: int, latency_s: float, capacity: int | None = None) -> float:
    """Throughput Little's law allows: requests in flight / time each takes. `capacity`
    caps what can really be in flight (a pool's threads)."""
    in_flight = concurrency if capacity is None else min(concurrency, capacity)
    return in_flight / latency_s


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def difference(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return a - b
