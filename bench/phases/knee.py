"""The knee: 5,000 subscribers at rising write rates, to find where latency turns up (and
why: deliveries/s and CPU per delivery at each rate)."""

from __future__ import annotations

from bench.phase import Phase
from bench.phases import fanout
from bench.runner import Run

RATES = (4, 8, 12, 16, 20)
"""Writes/s: 20,000 to 100,000 deliveries/s to 5,000 subscribers."""


def run(context: Run) -> list[Phase]:
    return [
        fanout.measure(context.server, f"knee 5000 subs @{rate}/s", 5000, rate, 10)
        for rate in RATES
    ]
