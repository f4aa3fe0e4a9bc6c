"""The bench's tables, built once from the results and shown two ways: on the terminal and
in docs/benchmarks.md."""
from __future__ import annotations

from . import analysis
from .tables import fmt, render

VERDICT = {True: "PASS", False: "MISSED", None: "not measured"}


def analyse(results: dict) -> dict:
    ov = analysis.overhead(results["overhead"])
    seed_rows = analysis.seeds(results["overhead"], results["modes"])
    c1k = analysis.c1000(results["modes"])
    two = analysis.two_workers(results.get("two_workers", []), ov, c1k)
    scrape = analysis.admin_scrape(results["scrape"])
    return {"overhead": ov, "modes": analysis.modes(results["modes"]), "seeds": seed_rows,
            "c1000": c1k, "two_workers": two,
            "targets": analysis.targets(ov, seed_rows, c1k, two, scrape)}


def tables(a: dict, scrape: list[dict]) -> dict[str, tuple[list[str], list[list[str]]]]:
    ov = a["overhead"]
    t: dict[str, tuple[list[str], list[list[str]]]] = {}
    t["targets"] = (["target", "required", "measured", "verdict"],
                    [[x["target"], x["required"], x["measured"], VERDICT[x["met"]]]
                     for x in a["targets"]])
    t["overhead"] = (
        ["configuration", "route", "req/s", "p99 ms", "CPU µs/req", "server CPU",
         "vs bare", "CPU over bare"],
        [[r["name"], f"`{r['path']}`", fmt(r["rps"], 0), fmt(r["p99_ms"], 2),
          fmt(r["cpu_us_per_req"]), fmt(r["server_cpu_pct"], 0, "%"), fmt(r["rps_vs_bare"], 3),
          fmt(r["cpu_over_bare_us"], 1, " µs")] for r in ov["rows"]])
    layer_rows = [[l["name"], fmt(l["alone_us"], 1, " µs"), fmt(l["alone_rps_ratio"], 3),
                   fmt(l["cpu_us"], 1, " µs"), fmt(l["rps_ratio"], 3)] for l in ov["layers"]]
    layer_rows += [
        ["Sentry client (a DSN set) vs none, middleware on in both", "", "",
         fmt(ov["sentry_client_us"], 1, " µs"), ""],
        ["formatting and writing the access log line (RUST_LOG=info vs warn)", "", "",
         fmt(ov["log_format_us"], 1, " µs"), ""],
        ["every layer, with Sentry's client (everything on vs every layer off)", "", "",
         fmt(ov["instrumentation_us"], 1, " µs"), ""],
        ["the worker's route itself, every layer off, vs bare hello",
         fmt(ov["route_us"], 1, " µs"), "", "", ""],
    ]
    t["layers"] = (["layer", "alone: CPU over route", "alone: req/s vs route",
                    "removed: CPU saved", "removed: req/s on / off"], layer_rows)
    io = ov["io10"]
    t["io10"] = (["server", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "vs bare"],
                 [[name, fmt(s["rps"], 0), fmt(s["p50_ms"], 2), fmt(s["p99_ms"], 2),
                   fmt(s["cpu_us_per_req"]), fmt(r, 3)]
                  for name, s, r in (("bare actix-web `/io?ms=10`", io["bare"], 1.0),
                                     ("worker, everything on, `/work/io?ms=10`", io["full"],
                                      io["ratio"])) if s])
    t["modes"] = (
        ["stack", "mode", "c", "req/s", "Little limit", "ratio", "p50 ms", "p99 ms", "errors",
         "threads", "RSS MiB", "CPU µs/req"],
        [[r["stack"], r["mode"], str(r["concurrency"]), fmt(r["rps"], 0),
          fmt(r["little_limit"], 0), fmt(r["little_ratio"], 3), fmt(r["p50_ms"], 1),
          fmt(r["p99_ms"], 1), str(r["errors"]), fmt(r["threads"], 0), fmt(r["rss_mb"]),
          fmt(r["cpu_us_per_req"])] for r in a["modes"]])
    t["seeds"] = (
        ["figure", "loopscope req/s", "FastAPI ASGI mw", "FastAPI BaseHTTP mw", "ratio",
         "CPU µs/req loopscope / FastAPI", "p99 ms loopscope / FastAPI",
         "RSS MiB loopscope / FastAPI"],
        [[r["figure"], fmt(r["loopscope_rps"], 0), fmt(r["asgi_rps"], 0), fmt(r["base_rps"], 0),
          fmt(r["rps_ratio"], 1, "×"),
          f"{fmt(r['loopscope_cpu_us'])} / {fmt(r['faster_cpu_us'])}",
          f"{fmt(r['loopscope_p99_ms'], 1)} / {fmt(r['faster_p99_ms'], 1)}",
          f"{fmt(r['loopscope_rss_mb'])} / {fmt(r['faster_rss_mb'])}"] for r in a["seeds"]])
    t["scrape"] = (
        ["/metrics of", "size KiB", "series", "idle median ms", "idle p99 ms",
         "under load median ms", "under load max ms", "load req/s"],
        [[s["target"], fmt(s["idle"]["bytes"] / 1024), str(s["idle"]["series"]),
          fmt(s["idle"]["median_ms"], 2), fmt(s["idle"]["p99_ms"], 2),
          fmt(s["under_load"]["median_ms"], 2), fmt(s["under_load"]["max_ms"], 2),
          fmt(s["under_load"]["load_rps"], 0)] for s in scrape])
    t["two"] = (["ratio", "CPU: one worker, one core", "CPU: 2 workers, both cores", "change",
                 "req/s: one core", "req/s: 2 workers"],
                [[r["ratio"], fmt(r["one"], 3), fmt(r["two"], 3),
                  "n/a" if r["change"] is None else f"{r['change']:+.1%}",
                  fmt(r.get("one_rps"), 3), fmt(r.get("two_rps"), 3)]
                 for r in a["two_workers"]["ratios"]])
    t["two_servers"] = (
        ["server", "CPU µs/req: one core", "2 workers", "server CPU: one core", "2 workers",
         "sleeps per 100 req: one core", "2 workers"],
        [[s["server"], fmt(s["one"].get("cpu_us_per_req")), fmt(s["two"].get("cpu_us_per_req")),
          fmt(s["one"].get("server_cpu_pct"), 0, "%"),
          fmt(s["two"].get("server_cpu_pct"), 0, "%"),
          fmt(s["one"].get("sleeps_per_100_req")), fmt(s["two"].get("sleeps_per_100_req"))]
         for s in a["two_workers"].get("servers", [])])
    st = ov["stall"]
    alone = next((l for l in ov["layers"] if l["layer"] == "stall"), {})
    t["stall"] = (["stall detector and lag probe", "req/s", "CPU per request"],
                  [["everything on", fmt(st["on_rps"], 0), ""],
                   ["everything on but the detector and probe", fmt(st["off_rps"], 0),
                    fmt(-st["cpu_us"] if st["cpu_us"] is not None else None, 1, " µs")],
                   ["throughput on / off", fmt(st["ratio"], 3), ""],
                   ["alone: the route with only them on, vs every layer off",
                    fmt(alone.get("alone_rps_ratio"), 3), fmt(alone.get("alone_us"), 1, " µs")]])
    return t


TITLES = {
    "targets": "Targets",
    "overhead": "1. Instrumentation overhead",
    "layers": "1b. Each layer's cost",
    "io10": "1c. 10 ms of work",
    "modes": "2. Handling modes (io 10 ms)",
    "scrape": "3. Scrape cost",
    "two": "6. Two workers on both cores",
    "two_servers": "6b. Each server, one core and 2 workers",
    "seeds": "4. The seeds' stack (ratio: loopscope / the faster FastAPI variant)",
    "stall": "5. Stall detector cost",
}


def terminal(results: dict) -> str:
    a = analyse(results)
    t = tables(a, results["scrape"])
    out = []
    for key in ("overhead", "layers", "io10", "modes", "scrape", "seeds", "stall", "two",
                "two_servers", "targets"):
        headers, rows = t[key]
        out += ["", f"== {TITLES[key]}", render(headers, [[c.replace("`", "") for c in r]
                                                          for r in rows])]
    missed = [x for x in a["targets"] if x["met"] is False]
    for x in missed:
        out.append(f"MISSED {x['target']}: {x['why']}")
    return "\n".join(out) + "\n"
