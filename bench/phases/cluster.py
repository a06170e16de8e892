"""Redis Cluster beside single Redis: the fan-out phases on a two-worker server whose
broker is a local 3-master cluster (3 replicas), against the same on the single Redis;
raw publish throughput with 1 and 3 masters; and that each master carries only its own
slots' board channels (`PUBSUB SHARDCHANNELS`, `CLUSTER KEYSLOT`)."""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import defaultdict

import redis
from redis.crc import key_slot
from tests.cluster import LocalCluster

from bench.env import REDIS
from bench.measure import CORES
from bench.phase import Phase
from bench.phases import fanout, many_boards
from bench.publisher import publish_process
from bench.runner import Run
from bench.server import Server

SUBSCRIBERS, RATE, SPREAD_BOARDS = 1000, 20, 300
DURATION = 10.0
PUBLISH_SECONDS, BATCH, CHANNELS = 5.0, 100, 3000


def run(context: Run) -> list[Phase]:
    """The single-Redis rows on the shared server, then a fresh cluster and a server on it."""
    phases = _fanouts(context, context.server, "single Redis", [redis.from_url(REDIS)], False)
    phases.append(publish_rate("single Redis", [(REDIS, "PUBLISH", _channels(CHANNELS))]))
    context.stop_shared()
    cluster = LocalCluster()
    cluster.start()
    try:
        masters = cluster.masters()
        server = context.own_server(workers=2, broker=cluster.url)
        try:
            nodes = [m.client() for m in masters]
            phases += _fanouts(context, server, "3-master cluster", nodes, True)
        finally:
            server.stop()
        phases.append(publish_rate("3-master cluster", _by_master(cluster, _channels(CHANNELS))))
    finally:
        cluster.stop()
    return phases


def _fanouts(
    context: Run, server: Server, label: str, nodes: list[redis.Redis], sharded: bool
) -> list[Phase]:
    """1,000 subscribers on one board at 20 writes/s; 300 boards x2 subscribers, writes
    spread over them."""
    one = fanout.measure(
        server, f"{label}: fan-out {SUBSCRIBERS} subs @{RATE}/s", SUBSCRIBERS, RATE, DURATION
    )
    spread = many_boards.measure(
        server, context.prefix, SPREAD_BOARDS, DURATION, 5.0, nodes, sharded, label=label
    )
    return [one, spread]


def _channels(count: int) -> list[str]:
    return [f"bench-publish:{{board:{i}}}" for i in range(count)]


def _by_master(cluster: LocalCluster, channels: list[str]) -> list[tuple[str, str, list[str]]]:
    """Each master with the channels whose slots it owns (SPUBLISH elsewhere is MOVED)."""
    owners: dict[int, list[str]] = defaultdict(list)
    for channel in channels:
        owners[cluster.owner(key_slot(channel.encode())).port] += [channel]
    return [(f"redis://127.0.0.1:{port}", "SPUBLISH", names) for port, names in owners.items()]


def publish_rate(label: str, targets: list[tuple[str, str, list[str]]]) -> Phase:
    """Raw publishes/s from `CORES` load-generator processes, each sending pipelines of
    `BATCH` to every target in turn, for `PUBLISH_SECONDS` (no subscribers)."""
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(
            target=publish_process, args=(targets, PUBLISH_SECONDS, BATCH, ready, go, results)
        )
        for _ in range(CORES)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire(timeout=60)
    t0 = time.monotonic()
    go.set()
    outcomes = [results.get(timeout=60) for _ in procs]
    elapsed = time.monotonic() - t0
    for p in procs:
        p.join(10)
    sent = sum(o["sent"] for o in outcomes)
    verb = targets[0][1]
    return Phase(
        name=f"{label}: raw {verb} x{len(targets)} master(s)",
        writes=sent,
        loadgen_cpu_util=round(sum(o["cpu"] for o in outcomes) / (elapsed * CORES), 2),
        extra={
            "publishes_per_s": round(sent / elapsed),
            "masters": len(targets),
            "channels_per_master": [len(names) for _, _, names in targets],
            "loadgen_processes": len(procs),
            "pipeline": BATCH,
        },
    )
