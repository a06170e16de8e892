"""The single PATCH: one write at a time on an idle server, the latency of a write alone.
The first write phase, with nothing else running."""

from __future__ import annotations

import asyncio
import time

from bench.boards import make_boards
from bench.http import Http1
from bench.phase import Phase, timed
from bench.runner import Run
from bench.server import Server


def run(context: Run) -> list[Phase]:
    return [measure(context.server, 20 if context.quick else 400)]


def measure(server: Server, count: int) -> Phase:
    """One PATCH at a time on an idle server: the latency of a write alone."""
    slug = make_boards(server.url, 1)[0]

    async def drive() -> list[float]:
        http = await Http1.open(server.url)
        latencies = []
        try:
            for i in range(count):
                started = time.perf_counter()
                status, _ = await http.request(
                    "PATCH", f"/api/boards/{slug}/widgets/n", {"value": i}
                )
                assert status == 200, status
                latencies.append(time.perf_counter() - started)
        finally:
            http.close()
        return latencies

    cpu0 = server.cpu()
    latencies = asyncio.run(drive())[count // 10 :]  # the first ones warm caches up
    cpu = server.cpu() - cpu0
    return timed(
        "single PATCH, idle server",
        latencies,
        server_cpu_ms_per_write=round(cpu / count * 1000, 3),
    )
