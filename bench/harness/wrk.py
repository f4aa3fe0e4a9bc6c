"""Running wrk and reading what it printed.

wrk prints a human summary; bench/wrk_report.lua adds one `WRK_JSON {...}` line with the
exact figures (latency percentiles in microseconds), which is what we read. The human
summary is parsed only as a fallback, when the line is missing (a wrk without Lua).
"""
from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

LUA = Path(__file__).resolve().parent.parent / "wrk_report.lua"

_UNITS_US = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    errors: dict[str, int] = field(default_factory=dict)
    latency_us: dict[str, float] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rps"] = self.rps
        return d


def parse(output: str) -> WrkResult:
    """Reads wrk's output: the WRK_JSON line when there is one, else the human summary."""
    for line in output.splitlines():
        if line.startswith("WRK_JSON "):
            raw = json.loads(line[len("WRK_JSON "):])
            return WrkResult(
                requests=int(raw["requests"]),
                duration_s=raw["duration_us"] / 1e6,
                errors={k: int(v) for k, v in raw["errors"].items()},
                latency_us={k: float(v) for k, v in raw["latency_us"].items()},
            )
    return _parse_text(output)


def _duration_us(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS_US[m.group(2)]


def _parse_text(output: str) -> WrkResult:
    m = re.search(r"(\d+) requests in ([\d.]+\w+),", output)
    if not m:
        raise ValueError("wrk printed no summary:\n" + output[-2000:])
    requests = int(m.group(1))
    duration_s = _duration_us(m.group(2)) / 1e6
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if m:
        for key, value in zip(("connect", "read", "write", "timeout"), m.groups()):
            errors[key] = int(value)
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if m:
        errors["status"] = int(m.group(1))
    latency: dict[str, float] = {}
    for pct, key in (("50", "p50"), ("90", "p90"), ("99", "p99")):
        m = re.search(rf"^\s*{pct}(?:\.000)?%\s+(\S+)", output, re.MULTILINE)
        if m:
            latency[key] = _duration_us(m.group(1))
    m = re.search(r"^\s*Latency\s+(\S+)\s+\S+\s+(\S+)", output, re.MULTILINE)
    if m:
        latency["mean"] = _duration_us(m.group(1))
        latency["max"] = _duration_us(m.group(2))
    return WrkResult(requests, duration_s, errors, latency)


def command(url: str, concurrency: int, duration_s: int, timeout_s: int,
            cpu: int | str | None) -> list[str]:
    """The wrk command line: one thread (one core), `concurrency` connections. wrk reads
    durations as whole seconds."""
    cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(int(duration_s), 1)}s",
           f"--timeout={max(int(timeout_s), 1)}s", "--latency", "-s", str(LUA), url]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu)] + cmd
    return cmd


def run(url: str, concurrency: int, duration_s: int, timeout_s: int,
        cpu: int | str | None) -> WrkResult:
    cmd = command(url, concurrency, duration_s, timeout_s, cpu)
    proc = subprocess.run(cmd, capture_output=True, text=True,
                          timeout=duration_s + timeout_s + 30)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return parse(proc.stdout)
