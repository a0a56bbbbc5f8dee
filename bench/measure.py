"""Timing primitives and the result row every measure produces."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Row:
    """One figure beside its reference; ``ratio`` says how the two compare, in words, so nobody reads it backwards."""

    measure: str
    value: float | None
    unit: str
    reference: str
    reference_value: float | None
    ratio: float | None = None
    ratio_meaning: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def latencies_ms(call: Callable[[], object], seconds: float, warmup: int = 200, most: int = 20_000) -> np.ndarray:
    """Per-call wall time in ms of ``call``, repeated for about ``seconds`` after a warm-up."""
    for _ in range(warmup):
        call()
    times = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline and len(times) < most:
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return np.array(times)


def p50(times_ms: np.ndarray) -> float:
    return float(np.percentile(times_ms, 50))


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, or None where either is missing."""
    if numerator is None or denominator in (None, 0):
        return None
    return round(numerator / denominator, 2)


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table: measure, value, reference, its value, and the ratio in words."""

    def fmt(value: float | None) -> str:
        if value is None:
            return "—"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"

    lines = ["| measure | value | reference | reference value | ratio |", "|---|---|---|---|---|"]
    for row in rows:
        ratio_text = f"{row.ratio:g}× ({row.ratio_meaning})" if row.ratio is not None else "—"
        lines.append(
            f"| {row.measure} | {fmt(row.value)} {row.unit} | {row.reference} | "
            f"{fmt(row.reference_value)} | {ratio_text} |"
        )
    return "\n".join(lines)
