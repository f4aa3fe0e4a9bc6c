"""What the kernel says about a server process: CPU time, threads, resident memory, sleeps.

CPU time is utime + stime of /proc/<pid>/stat, every thread of the process included; divided
by the requests served in the same window it gives CPU microseconds per request, a figure
that a busy machine disturbs far less than throughput. Sleeps are the voluntary context
switches of all its threads: an event loop that runs out of work sleeps in epoll_wait and
pays a wake-up for the next request, so a server the load generator cannot keep busy spends
more CPU per request than its work alone (section 6 shows it).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

CLK_TCK = os.sysconf("SC_CLK_TCK")


def parse_stat_cpu_ticks(stat: str) -> int:
    """utime + stime, in clock ticks, from the text of /proc/<pid>/stat.

    The command name (field 2) may hold spaces and parentheses: fields are counted from the
    last `)`. utime and stime are fields 14 and 15.
    """
    rest = stat[stat.rindex(")") + 2:].split()
    # rest[0] is field 3 (state): field n is rest[n - 3].
    return int(rest[14 - 3]) + int(rest[15 - 3])


def parse_status(status: str) -> dict[str, int]:
    """Threads, VmRSS and VmHWM (bytes) from the text of /proc/<pid>/status."""
    out: dict[str, int] = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == "Threads":
            out["threads"] = int(value)
        elif key in ("VmRSS", "VmHWM"):
            number, unit = value.split()
            assert unit == "kB", unit
            out["rss_bytes" if key == "VmRSS" else "peak_rss_bytes"] = int(number) * 1024
    return out


def parse_voluntary_switches(status: str) -> int:
    """voluntary_ctxt_switches from the text of a task's /proc/<pid>/task/<tid>/status."""
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == "voluntary_ctxt_switches":
            return int(value)
    return 0


def voluntary_switches(pid: int) -> int:
    """Voluntary context switches of every thread the process has now (a thread that ended
    takes its count along: the loops this bench watches live as long as the process)."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                total += parse_voluntary_switches(f.read())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        return parse_stat_cpu_ticks(f.read()) / CLK_TCK


def status(pid: int) -> dict[str, int]:
    with open(f"/proc/{pid}/status") as f:
        return parse_status(f.read())


@dataclass
class Usage:
    cpu_s: float
    max_threads: int
    max_rss_bytes: int
    voluntary_switches: int


class Sampler:
    """Samples threads and RSS of a process every `period_s` while a load runs, and its CPU
    time at start and stop. Use as a context manager around the load."""

    def __init__(self, pid: int, period_s: float = 0.1):
        self.pid = pid
        self.period_s = period_s
        self._stop = threading.Event()
        self._max_threads = 0
        self._max_rss = 0
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.usage: Usage | None = None

    def _sample(self) -> None:
        try:
            s = status(self.pid)
        except (FileNotFoundError, ProcessLookupError):
            return
        self._max_threads = max(self._max_threads, s.get("threads", 0))
        self._max_rss = max(self._max_rss, s.get("rss_bytes", 0))

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample()

    def __enter__(self) -> Sampler:
        self._sample()
        self._cpu0 = cpu_seconds(self.pid)
        self._switches0 = voluntary_switches(self.pid)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        cpu1 = cpu_seconds(self.pid)
        switches1 = voluntary_switches(self.pid)
        self._stop.set()
        self._thread.join()
        self._sample()
        self.usage = Usage(cpu1 - self._cpu0, self._max_threads, self._max_rss,
                           max(switches1 - self._switches0, 0))
