"""What a phase measured: one row of the table and one object of the JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Phase:
    name: str
    subscribers: int = 0
    writes: int = 0
    deliveries: int = 0
    expected: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    deliveries_per_s: float = 0.0
    server_cpu_us_per_delivery: float = float("nan")
    loadgen_cpu_util: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def timed(name: str, latencies: list[float], **extra: Any) -> Phase:
    """A write phase: one write per latency (seconds), with its percentiles in ms."""
    return Phase(
        name=name,
        writes=len(latencies),
        p50_ms=round(pct(latencies, 0.5) * 1000, 2),
        p99_ms=round(pct(latencies, 0.99) * 1000, 2),
        max_ms=round(max(latencies) * 1000, 2),
        extra=extra,
    )
