"""REST writes: widget PATCHes flat out with no subscribers, on 1 board and on 16, each
beside the store floor of the same run (floor.py) as the share of it REST reaches."""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.boards import make_boards, on_boards
from bench.measure import CpuSplit
from bench.phase import Phase, timed
from bench.phases import floor
from bench.runner import Run
from bench.server import Server
from bench.writer import write_loop


def load(context: Run) -> tuple[float, int]:
    """Seconds and concurrent writers of a flat-out write phase."""
    return (1.0, 4) if context.quick else (8.0, 16)


def run(context: Run) -> list[Phase]:
    """Per board count: the floor (three statements, then one CTE), then REST, with its
    ratio to both floors."""
    seconds, concurrency = load(context)
    server, phases = context.server, []
    for boards in (1,) if context.quick else (1, 16):
        floors = [
            floor.measure(server, context.db, seconds, concurrency, boards, cte=cte)
            for cte in (False, True)
        ]
        rest = measure(server, seconds, concurrency, boards)
        for below, name in zip(floors, ("x_floor_three", "x_floor_cte"), strict=True):
            rest.extra[name] = round(rest.extra["writes_per_s"] / below.extra["writes_per_s"], 2)
        phases += [*floors, rest]
    return phases


def measure(server: Server, duration: float, concurrency: int, boards: int = 1) -> Phase:
    """REST widget PATCHes flat out, no subscribers: writes/s and latency."""
    slugs = make_boards(server.url, boards)
    before = _db_seconds(server.url)
    split, t0 = CpuSplit(server.cpu), time.monotonic()
    wrote = asyncio.run(write_loop(server.url, slugs, None, duration, concurrency))
    elapsed = time.monotonic() - t0
    cpu_ms = split.per_write(wrote["writes"])
    db = _db_seconds(server.url) - before
    total = sum(wrote["latencies"])
    return timed(
        f"REST writes, {concurrency} concurrent, {on_boards(boards)}",
        wrote["latencies"],
        writes_per_s=round(wrote["writes"] / elapsed, 1),
        server_cpu_ms_per_write=cpu_ms["server"],
        db_share_of_write_time=round(db / total, 2) if total else None,
        cpu_ms_per_write=cpu_ms,
    )


def _db_seconds(url: str) -> float:
    """Write transaction time, summed over the workers (`/metrics` covers all of them)."""
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("switchboard_write_db_seconds_sum "):
            return float(line.split()[1])
    return 0.0
