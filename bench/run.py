"""`make bench`: what loopscope's instrumentation and handling modes cost, beside a bare
actix-web server and the seeds' Python stack. See docs/benchmarks.md (which this writes).

    python bench/run.py [--quick] [--bin-dir target/release] [--out-dir target/bench]

Run it from the venv `make bench` creates (.venv-bench/): that Python also serves FastAPI.
It needs wrk and taskset on PATH and the release binaries (worker, backend, bench-hello).
Exit status: 0 when everything was measured (a missed target is reported, not an error),
1 when the harness failed, 2 when something it needs is missing.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness import doc, report, servers, suites
from harness.measure import Settings, log

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "prometheus_client")


def cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name":
            return value.strip()
    return "unknown CPU model"


def _output(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (p.stdout + p.stderr).strip().splitlines()[0] if (p.stdout + p.stderr).strip() else "unknown"


def meta(args: argparse.Namespace, settings: Settings) -> dict:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} not installed")
    return {
        "command": args.command,
        "quick": args.quick,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "revision": _output(["git", "-C", str(ROOT), "describe", "--always", "--dirty"]),
        "machine": {"cores": os.cpu_count(), "cpu_model": cpu_model(Path("/proc/cpuinfo").read_text()),
                    "kernel": platform.release()},
        "settings": vars(settings),
        "sentry_dsn": servers.default_dsn,
        "python": f"Python {platform.python_version()}",
        "python_packages": versions,
        "wrk_version": _output(["wrk", "--version"]).split("Copyright")[0].strip(),
        "load_average_start": os.getloadavg()[0],
    }


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="every measurement briefly (1 s, one run): checks the harness")
    p.add_argument("--bin-dir", type=Path, default=ROOT / "target" / "release")
    p.add_argument("--out-dir", type=Path, default=None,
                   help="default: target/bench (target/bench/quick with --quick)")
    p.add_argument("--doc", type=Path, default=None,
                   help="default: docs/benchmarks.md (OUT_DIR/benchmarks.md with --quick)")
    p.add_argument("--command", default=None, help="the command to print in the document")
    p.add_argument("--duration", type=int, default=None, help="seconds of load per run")
    p.add_argument("--reps", type=int, default=None, help="runs per point")
    p.add_argument("--sections", default="overhead,modes,two,scrape",
                   help="comma-separated subset, for work on the harness")
    args = p.parse_args(argv)
    args.out_dir = args.out_dir or ROOT / "target" / "bench" / ("quick" if args.quick else "")
    args.doc = args.doc or (args.out_dir / "benchmarks.md" if args.quick
                            else ROOT / "docs" / "benchmarks.md")
    args.command = args.command or ("make bench BENCH_QUICK=1" if args.quick else "make bench")
    return args


def check_tools(bin_dir: Path) -> list[str]:
    problems = [f"{tool} is not on PATH" for tool in ("wrk", "taskset") if not shutil.which(tool)]
    problems += [f"{bin_dir / b} is missing (cargo build --release --workspace --bins)"
                 for b in ("worker", "backend", "bench-hello") if not (bin_dir / b).exists()]
    try:
        import fastapi, uvicorn, prometheus_client  # noqa: F401, E401
    except ImportError as e:
        problems.append(f"{e.name} is not importable: run from .venv-bench (make bench)")
    return problems


def run_sections(ctx: suites.Context, sections: set[str], all_cpus: str | None, quick: bool,
                 results: dict) -> None:
    if "overhead" in sections:
        results["overhead"] = suites.overhead(ctx)
    if "modes" in sections:
        results["modes"] = suites.modes(ctx)
    if "two" in sections and all_cpus is not None:
        results["two_workers"] = suites.two_workers(ctx)
    if "scrape" in sections:
        results["scrape"] = suites.scrape(ctx, 10 if quick else 50)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    problems = check_tools(args.bin_dir)
    if problems:
        for problem in problems:
            print(f"bench: {problem}", file=sys.stderr)
        return 2
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, load_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    all_cpus = ",".join(map(str, cpus)) if len(cpus) >= 2 else None
    if load_cpu is not None:
        os.sched_setaffinity(0, {load_cpu})  # the driver stays off the server's core
    settings = Settings(duration_s=args.duration or (1 if args.quick else 3),
                        reps=args.reps or (1 if args.quick else 3),
                        warmup_s=0 if args.quick else 1, timeout_s=5,
                        server_cpu=server_cpu, load_cpu=load_cpu, all_cpus=all_cpus)
    ctx = suites.Context(args.bin_dir, sys.executable, args.out_dir / "logs", settings)
    sections = set(args.sections.split(","))
    results: dict = {"meta": meta(args, settings), "overhead": [], "modes": [],
                     "two_workers": [], "scrape": []}
    started = time.monotonic()
    sink, servers.default_dsn = servers.sentry_sink(args.bin_dir, load_cpu, ctx.log_dir)
    servers.wait_ready(sink)
    results["meta"]["sentry_dsn"] = servers.default_dsn
    try:
        run_sections(ctx, sections, all_cpus, args.quick, results)
        results["meta"]["sentry_envelopes"] = servers.envelopes_received(sink)
    finally:
        servers.stop(sink)
    results["meta"]["load_average_end"] = os.getloadavg()[0]
    results["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
    results_path = args.out_dir / "results.json"
    results["meta"]["results"] = (str(results_path.relative_to(ROOT))
                                  if results_path.is_relative_to(ROOT) else str(results_path))
    results["analysis"] = report.analyse(results)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=1) + "\n")
    table = report.terminal(results)
    (args.out_dir / "table.txt").write_text(table)
    args.doc.parent.mkdir(parents=True, exist_ok=True)
    args.doc.write_text(doc.render_doc(results))
    print(table)
    log(f"bench: {results['meta']['elapsed_s']:.0f} s; wrote {args.out_dir / 'results.json'} "
        f"and {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
