"""The load generator's raw publisher: redis-py pipelines of PUBLISH or SPUBLISH, as fast
as one process sends them, to a single Redis or to each master of a cluster (its own
slots' channels only). Spawned processes import this module: it imports little."""

from __future__ import annotations

import random
import time
from typing import Any

import redis

from bench.measure import raise_fd_limit

PAYLOAD = b"x" * 200
"""About one delivery's frame."""


def publish_process(
    targets: list[tuple[str, str, list[str]]],
    seconds: float,
    batch: int,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """Send pipelines of `batch` publishes in turn to each (Redis URL, verb, its channels)
    of `targets` for `seconds`; put how many were sent and the CPU it took."""
    raise_fd_limit()
    clients = [(redis.from_url(url), verb, channels) for url, verb, channels in targets]
    ready.release()
    go.wait()
    sent, cpu0 = 0, time.process_time()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for client, verb, channels in clients:
            pipe = client.pipeline(transaction=False)
            for channel in random.choices(channels, k=batch):
                pipe.execute_command(verb, channel, PAYLOAD)  # type: ignore[no-untyped-call]
            pipe.execute()
            sent += batch
    results.put({"sent": sent, "cpu": time.process_time() - cpu0})
    for client, _, _ in clients:
        client.close()
