"""Tables, for the terminal (aligned text) and for docs/benchmarks.md (Markdown)."""
from __future__ import annotations

import re

_NUMERIC = re.compile(r"^[-+]?[\d,]*\.?\d+\s*(%|×|µs|ms|MiB|KiB|/s)?$|^n/a$|^–$")


def fmt(v, digits: int = 1, unit: str = "") -> str:
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}{unit}"


def _right(column: list[str]) -> bool:
    """A column of numbers is right-aligned."""
    cells = [c for c in column if c]
    return bool(cells) and all(_NUMERIC.match(c) for c in cells)


def render(headers: list[str], rows: list[list[str]], markdown: bool = False) -> str:
    if any(len(r) != len(headers) for r in rows):
        raise ValueError("every row needs one cell per header")
    columns = list(zip(headers, *rows)) if rows else [(h,) for h in headers]
    right = [_right(list(col[1:])) for col in columns]
    if markdown:
        esc = lambda c: c.replace("|", "\\|")  # noqa: E731
        lines = ["| " + " | ".join(esc(h) for h in headers) + " |",
                 "|" + "|".join("---:" if r else "---" for r in right) + "|"]
        lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(c) for c in col) for col in columns]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    return "\n".join(out)
