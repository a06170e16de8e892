"""Saturation: 1,000 subscribers while eight writers PATCH flat out, so deliveries/s is
the server's ceiling."""

from __future__ import annotations

from bench.phase import Phase
from bench.phases import fanout
from bench.runner import Run


def run(context: Run) -> list[Phase]:
    return [
        fanout.measure(
            context.server, "saturation 1000 subs, writes flat out", 1000, None, 10, concurrency=8
        )
    ]
