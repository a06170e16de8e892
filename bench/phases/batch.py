"""Batch writes: one PATCH sets several number widgets of a board, flat out: widgets/s."""

from __future__ import annotations

import asyncio
import time

from bench.boards import make_boards
from bench.phase import Phase, timed
from bench.phases import writes
from bench.runner import Run
from bench.server import Server
from bench.writer import write_loop


def run(context: Run) -> list[Phase]:
    seconds, concurrency = writes.load(context)
    return [measure(context.server, seconds, concurrency, 4 if context.quick else 20)]


def measure(server: Server, duration: float, concurrency: int, size: int) -> Phase:
    """Batch PATCHes of `size` number widgets on one board, flat out: widgets/s."""
    slug = make_boards(server.url, 1, size)[0]
    t0 = time.monotonic()
    wrote = asyncio.run(write_loop(server.url, [slug], None, duration, concurrency, batch=size))
    elapsed = time.monotonic() - t0
    return timed(
        f"REST batch writes of {size}, {concurrency} concurrent, 1 board",
        wrote["latencies"],
        batches_per_s=round(wrote["writes"] / elapsed, 1),
        widgets_per_s=round(wrote["writes"] * size / elapsed, 1),
    )
