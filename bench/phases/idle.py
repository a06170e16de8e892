"""Idle connections: the memory one worker spends per WebSocket that only stays open, and
the time to accept them. A fresh one-worker server per count: a worker keeps the heap its
last clients grew."""

from __future__ import annotations

import multiprocessing as mp
import time

from bench.boards import make_boards
from bench.measure import CORES, rss
from bench.phase import Phase
from bench.runner import Run
from bench.server import Server
from bench.subscriber import hold


def run(context: Run) -> list[Phase]:
    """`--idle` connections, else 100 (quick) or 1,000 then 10,000."""
    phases = []
    for n in context.idle or ((100,) if context.quick else (1000, 10_000)):
        single = context.own_server(workers=1)
        try:
            phases.append(measure(single, n))
        finally:
            single.stop()
    return phases


def measure(server: Server, count: int) -> Phase:
    """Memory per idle WebSocket held by one worker, and the time to accept them."""
    make_boards(server.url, 1)  # as every phase: the RSS before includes a write
    pid = server.workers[0]
    before = rss(pid)
    procs = max(1, min(CORES * 2, count // 2000 or 1))
    ctx = mp.get_context("spawn")
    ready, done = ctx.Semaphore(0), ctx.Event()
    t0 = time.monotonic()
    holders = [
        ctx.Process(
            target=hold,
            args=(server.url.replace("http", "ws") + "/ws", count // procs, ready, done),
        )
        for _ in range(procs)
    ]
    for h in holders:
        h.start()
    for _ in holders:
        ready.acquire(timeout=600)
    accept_s = time.monotonic() - t0
    time.sleep(1)
    after = rss(pid)
    done.set()
    for h in holders:
        h.join(60)
    held = count // procs * procs
    return Phase(
        name=f"idle connections x{held}",
        subscribers=held,
        extra={
            "rss_before_mib": round(before / 2**20, 1),
            "rss_after_mib": round(after / 2**20, 1),
            "kib_per_connection": round((after - before) / held / 1024, 2),
            "accept_seconds": round(accept_s, 2),
        },
    )
