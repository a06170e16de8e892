"""The run's output: a Markdown table with each phase's extra figures below it, and the
JSON document (bench/results.json)."""

from __future__ import annotations

import math
import platform
import sys
from dataclasses import asdict
from typing import Any

from bench.measure import CORES
from bench.phase import Phase


def table(phases: list[Phase]) -> str:
    head = (
        "| phase | subs | writes | deliveries | lost/dup/ooo | p50 ms | p99 ms | max ms"
        " | deliv/s | server µs/deliv | loadgen CPU |"
    )
    rows = [head, "|" + "---|" * 11]
    for p in phases:
        cells = [
            p.name,
            p.subscribers,
            p.writes,
            p.deliveries,
            f"{p.lost}/{p.duplicated}/{p.out_of_order}",
            p.p50_ms,
            p.p99_ms,
            p.max_ms,
            p.deliveries_per_s,
            p.server_cpu_us_per_delivery,
            p.loadgen_cpu_util,
        ]
        rows.append(
            "| "
            + " | ".join("—" if isinstance(c, float) and math.isnan(c) else str(c) for c in cells)
            + " |"
        )
    extras = [
        f"- **{p.name}**: " + ", ".join(f"{k} = {v}" for k, v in p.extra.items())
        for p in phases
        if p.extra
    ]
    return "\n".join([*rows, "", *extras])


def document(phases: list[Phase], *, quick: bool) -> dict[str, Any]:
    return {
        "machine": {
            "cpus": CORES,
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "quick": quick,
        "phases": [asdict(p) for p in phases],
    }
