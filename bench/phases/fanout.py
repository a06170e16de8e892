"""Fan-out: subscribers in load-generator processes on one board while a writer PATCHes it;
latency from the send time a write carries to each receipt, losses and order, and the
server's CPU per delivery."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from collections.abc import Callable
from typing import Any

from bench.boards import make_boards
from bench.measure import CORES, rss
from bench.phase import Phase, pct
from bench.runner import Run
from bench.server import Server
from bench.subscriber import subscriber_process
from bench.writer import write_loop


def run(context: Run) -> list[Phase]:
    """At 20 writes/s: 20 subscribers (quick), 1,000 (`--only fanout`), or 100 to 5,000."""
    if context.quick:
        return [measure(context.server, "fan-out 20 subs @20/s", 20, 20, 3)]
    counts = (1000,) if context.only else (100, 1000, 5000)
    return [measure(context.server, f"fan-out {n} subs @20/s", n, 20, 10) for n in counts]


def measure(
    server: Server,
    name: str,
    subscribers: int,
    rate: float | None,
    duration: float,
    concurrency: int = 1,
) -> Phase:
    """`subscribers` on a new board for `duration` s of writes at `rate`/s (None: flat out,
    `concurrency` writers)."""
    slug = make_boards(server.url, 1)[0]
    return deliver(server, name, [slug] * subscribers, [slug], rate, duration, concurrency)


def deliver(
    server: Server,
    name: str,
    subscriptions: list[str],
    targets: list[str],
    rate: float | None,
    duration: float,
    concurrency: int = 1,
    *,
    spread: bool = False,
    live: Callable[[], dict[str, Any]] | None = None,
) -> Phase:
    """One connection per item of `subscriptions`, subscribed to that board, for `duration`
    s of writes to `targets` at `rate`/s (None: flat out, `concurrency` writers; `spread`:
    each write to a board picked at random). `live`, called once every subscription is
    live and before the first write, measures what it wants (its figures join `extra`)."""
    subscribers = len(subscriptions)
    procs = max(1, min(CORES * 2, subscribers // 500 or 1))
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    share = [subscriptions[i::procs] for i in range(procs)]
    ws_url = server.url.replace("http", "ws") + "/ws"
    listen = duration + 3
    workers = [
        ctx.Process(target=subscriber_process, args=(ws_url, part, ready, go, results, listen))
        for part in share
    ]
    for w in workers:
        w.start()
    for _ in workers:
        if not ready.acquire(timeout=900):
            raise RuntimeError(f"{name}: the subscribers did not get their snapshots")
    extra = live() if live is not None else {}
    cpu0, t0 = server.cpu(), time.monotonic()
    go.set()
    wrote = asyncio.run(write_loop(server.url, targets, rate, duration, concurrency, spread=spread))
    server_rss = sum(rss(pid) for pid in server.workers)  # subscribers still connected
    outcomes = [results.get(timeout=120) for _ in workers]
    elapsed = time.monotonic() - t0
    cpu = server.cpu() - cpu0
    for w in workers:
        w.join(10)
    latencies = [x for o in outcomes for x in o["latencies"]]
    first: dict[float, float] = {}
    last: dict[float, float] = {}
    for o in outcomes:
        for value, latency in o["first"].items():
            first[value] = min(latency, first.get(value, latency))
        for value, latency in o["last_seen"].items():
            last[value] = max(latency, last.get(value, latency))
    spread_ms = [last[value] - first[value] for value in first]
    deliveries = sum(o["deliveries"] for o in outcomes)
    # The widget's creation was seq 1 of each board (board creation makes no event).
    final = {slug: wrote["per_board"][slug] + 1 for slug in set(subscriptions)}
    seen = [
        (final[slug], start, end)
        for o in outcomes
        for slug, start, end in zip(o["slugs"], o["starts"], o["last"], strict=True)
    ]
    lost = sum(max(0, want - end) for want, _, end in seen)
    expected = sum(want - start for want, start, _ in seen)
    loadgen_cpu = sum(o["cpu"] for o in outcomes)
    return Phase(
        name=name,
        subscribers=subscribers,
        writes=wrote["writes"],
        deliveries=deliveries,
        expected=expected,
        lost=lost,
        duplicated=sum(o["dup"] for o in outcomes),
        out_of_order=sum(o["ooo"] for o in outcomes),
        p50_ms=round(pct(latencies, 0.5), 2),
        p99_ms=round(pct(latencies, 0.99), 2),
        max_ms=round(max(latencies), 2) if latencies else float("nan"),
        deliveries_per_s=round(deliveries / elapsed, 1),
        server_cpu_us_per_delivery=round(cpu / deliveries * 1e6, 2) if deliveries else float("nan"),
        loadgen_cpu_util=round(loadgen_cpu / (listen * min(procs, CORES)), 2),
        extra={
            **extra,
            "loadgen_processes": procs,
            "server_rss_mib": round(server_rss / 2**20, 1),
            "server_cpu_s": round(cpu, 3),
            "elapsed_s": round(elapsed, 2),
            "server_cpu_ms_per_write": round(cpu / wrote["writes"] * 1e3, 3)
            if wrote["writes"]
            else float("nan"),
            "write_p50_ms": round(pct(wrote["latencies"], 0.5) * 1000, 2),
            "first_receipt_p50_p99_ms": [
                round(pct(list(first.values()), q), 2) for q in (0.5, 0.99)
            ],
            "spread_p50_p99_ms": [round(pct(spread_ms, q), 2) for q in (0.5, 0.99)],
            "loadgen_cpu_us_per_delivery": round(loadgen_cpu / deliveries * 1e6, 2)
            if deliveries
            else float("nan"),
            "loadgen_saturated": loadgen_cpu / (listen * min(procs, CORES)) > 0.9,
        },
    )
