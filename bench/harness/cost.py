"""The deterministic cost guard (`make test-cost`): instructions per request of the worker's
cheapest route with every layer on, counted by callgrind, compared with a budget kept in the
repository (bench/callgrind-budget.json).

Time is noisy on a shared machine; instruction counts are not. Each configuration runs the
worker twice under callgrind, with the same start, the same warm-up and a different number
of requests; the difference of the two totals over the difference of the requests is the
cost of one request, with start-up, warm-up and shutdown cancelled out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# A regression beyond this share of the budget fails the guard.
TOLERANCE = 0.10

_TOTALS = re.compile(r"^(?:totals|summary):\s+(\d+)", re.MULTILINE)


def parse_totals(callgrind_out: str) -> int:
    """Instructions (Ir) of a callgrind output file: its `totals:` (or `summary:`) line."""
    m = _TOTALS.search(callgrind_out)
    if m is None:
        raise ValueError("no `totals:` or `summary:` line: not a callgrind output file")
    return int(m.group(1))


def per_request(short_total: int, short_n: int, long_total: int, long_n: int) -> float:
    """Instructions per request, start-up and warm-up cancelled by the difference."""
    if long_n <= short_n:
        raise ValueError("the long run needs more requests than the short one")
    return (long_total - short_total) / (long_n - short_n)


@dataclass
class Verdict:
    name: str
    measured: float
    budget: float
    tolerance: float = TOLERANCE

    @property
    def limit(self) -> float:
        return self.budget * (1 + self.tolerance)

    @property
    def ok(self) -> bool:
        return self.measured <= self.limit

    @property
    def change(self) -> float:
        return self.measured / self.budget - 1

    def line(self) -> str:
        word = "ok" if self.ok else "REGRESSION"
        text = (f"{word}: {self.name}: {self.measured:,.0f} instructions/request, budget "
                f"{self.budget:,.0f} ({self.change:+.1%}; fails above {self.limit:,.0f})")
        if self.ok and self.change < -self.tolerance:
            text += "; well under budget: lower it with `make test-cost COST_UPDATE=1`"
        return text
