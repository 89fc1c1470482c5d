"""Summaries (min/median/max in milliseconds) and plain-text tables."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Summary:
    """Milliseconds over `n` samples."""

    n: int
    min: float
    median: float
    max: float

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}

    def cells(self) -> list[str]:
        return [f"{self.min:.1f}", f"{self.median:.1f}", f"{self.max:.1f}"]


def summarize(seconds: Sequence[float]) -> Summary:
    if not seconds:
        raise ValueError("no samples")
    ms = [s * 1000 for s in seconds]
    return Summary(len(ms), min(ms), statistics.median(ms), max(ms))


def shifted(summary: Summary, by_ms: float) -> Summary:
    return Summary(summary.n, summary.min + by_ms, summary.median + by_ms, summary.max + by_ms)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """(fn's value, wall seconds)."""
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def table(header: Sequence[str], rows: Iterable[Sequence[str]], title: str = "") -> str:
    """A fixed-width table; columns after the first are right-aligned."""
    rows = [list(map(str, r)) for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        )

    out = [title] if title else []
    out += [line(header), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(out)


def verdict(value: float, limit: float) -> str:
    return "met" if value <= limit else "MISSED"
