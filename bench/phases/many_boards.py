"""Many boards, few viewers each (the SaaS shape): N boards, two WebSocket subscribers per
board, one board per connection, on a fresh two-worker server. What holding them costs
with no writes at all (each worker's CPU, memory per board, Redis subscriptions per
worker), then writes spread at random over the boards beside the same write rate on one
board with two subscribers: CPU per write and its deliveries, and the ratio."""

from __future__ import annotations

import time
from typing import Any

import redis

from bench.boards import make_boards
from bench.env import REDIS
from bench.measure import cpu_seconds, machine_cpu, rss
from bench.phase import Phase
from bench.phases import fanout
from bench.pubsub import shard_placement, subscriptions
from bench.runner import Run
from bench.server import Server

SUBSCRIBERS_PER_BOARD = 2
RATE = 50
"""Writes/s, in the spread phase and its one-board baseline."""


def run(context: Run) -> list[Phase]:
    """`--boards` sizes, else 20 boards (quick) or 10,000; each on a fresh server (a
    worker keeps the heap its last clients grew), after its one-board baseline."""
    quick = context.quick
    duration, idle = (2.0, 2.0) if quick else (10.0, 20.0)
    phases = []
    for n in context.boards or ((20,) if quick else (10_000,)):
        server = context.own_server(workers=2)
        try:
            one = baseline(server, duration)
            held: list[Phase] = []
            nodes = [redis.from_url(REDIS)]
            many = measure(server, context.prefix, n, duration, idle, nodes, alongside=held)
            phases += [one, *held, relate(many, one, held[0])]
        finally:
            server.stop()
    return phases


def baseline(server: Server, duration: float) -> Phase:
    """One board, its two subscribers, the spread phase's write rate."""
    name = f"boards: 1 board x{SUBSCRIBERS_PER_BOARD} subs @{RATE}/s"
    return fanout.measure(server, name, SUBSCRIBERS_PER_BOARD, RATE, duration)


def relate(many: Phase, one: Phase, alongside: Phase) -> Phase:
    """The spread phase's CPU per write (and its deliveries) over the one-board phase's
    on the fresh server, also net of the idle cost the many boards add over the same time;
    and over the one-board phase run `alongside` the many boards held (the same idle cost
    under both: what spreading the writes itself costs)."""
    per_write = many.extra["server_cpu_ms_per_write"]
    idle_cores = sum(many.extra["idle_cpu_pct_per_worker"]) / 100
    net = (many.extra["server_cpu_s"] - idle_cores * many.extra["elapsed_s"]) / many.writes * 1e3
    base = one.extra["server_cpu_ms_per_write"]
    many.extra["one_board_cpu_ms_per_write"] = base
    many.extra["cpu_per_write_vs_one_board"] = round(per_write / base, 2)
    many.extra["cpu_ms_per_write_net_of_idle"] = round(net, 3)
    many.extra["net_of_idle_vs_one_board"] = round(net / base, 2)
    held = alongside.extra["server_cpu_ms_per_write"]
    many.extra["one_board_while_held_cpu_ms_per_write"] = held
    many.extra["cpu_per_write_vs_one_board_while_held"] = round(per_write / held, 2)
    return many


def measure(
    server: Server,
    prefix: str,
    boards: int,
    duration: float,
    idle: float,
    nodes: list[redis.Redis],
    sharded: bool = False,
    label: str = "boards",
    alongside: list[Phase] | None = None,
) -> Phase:
    """`boards` new boards, two subscribers each; once all are live, `idle` s with no
    writes, then `duration` s of writes at `RATE`/s to random boards. `nodes`: the
    Redis (or the cluster's masters, `sharded`) to ask about subscriptions; `label`
    begins the phase's name. With `alongside`, between the two, the one-board phase on a
    board of its own while the others are held (appended there)."""
    started = time.monotonic()
    slugs = make_boards(server.url, boards, concurrency=16)
    made = time.monotonic() - started
    time.sleep(1)
    workers = server.workers
    before = [rss(pid) for pid in workers]

    def live() -> dict[str, Any]:
        held = time.monotonic() - started - made
        time.sleep(2)  # the last subscriptions' catch-up reads
        cpu0, machine0, t0 = [cpu_seconds(p) for p in workers], machine_cpu(), time.monotonic()
        time.sleep(idle)
        elapsed = time.monotonic() - t0
        cpu = [cpu_seconds(p) - c for p, c in zip(workers, cpu0, strict=True)]
        machine = machine_cpu() - machine0
        after = [rss(pid) for pid in workers]
        delta = [a - b for a, b in zip(after, before, strict=True)]
        figures: dict[str, Any] = {
            "boards": boards,
            "boards_created_per_s": round(boards / made, 1),
            "subscribe_seconds": round(held, 1),
            "idle_seconds": round(elapsed, 1),
            "idle_cpu_pct_per_worker": [round(c / elapsed * 100, 2) for c in cpu],
            "idle_machine_busy_pct": round(machine / elapsed * 100, 1),
            "rss_before_mib_per_worker": [round(b / 2**20, 1) for b in before],
            "rss_after_mib_per_worker": [round(a / 2**20, 1) for a in after],
            "kib_per_board": round(sum(delta) / boards / 1024, 2),
            **subscriptions(nodes, prefix, workers, sharded),
        }
        if sharded:
            figures.update(shard_placement(nodes, prefix))
        if alongside is not None:
            one = baseline(server, duration)
            one.name += f", beside {boards} boards held"
            alongside.append(one)
        return figures

    name = f"{label}: {boards} boards x{SUBSCRIBERS_PER_BOARD} subs, spread @{RATE}/s"
    subscribers = [slug for slug in slugs for _ in range(SUBSCRIBERS_PER_BOARD)]
    return fanout.deliver(server, name, subscribers, slugs, RATE, duration, spread=True, live=live)
