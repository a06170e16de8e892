"""The delivery guarantees on a real Redis Cluster, through its faults: two `switchboard
serve` processes on PostgreSQL and a local cluster, WebSocket subscribers on both, REST
writes on one of them while a master fails over, a slot moves, a node restarts or the
whole cluster freezes. Every subscriber must get every acknowledged write once, in order.

The store poll under the broker is slowed to 30 s here: a delivery that arrives fast after
the fault was carried by the broker (re-routed to the slot's new owner), not by the poll."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

import httpx
import orjson
import pytest
from redis.crc import key_slot
from websockets.asyncio.client import ClientConnection, connect

from switchboard.names import channel_name
from tests.cluster import LocalCluster
from tests.conftest import production_env
from tests.helpers import AUTH, ServerProcess, eventually, metric, serve_processes

SETTLED = 10
"""After the fault, this many more writes must all come through the broker (published,
not found by the store poll) within `FAST`: the broker is back for this board."""
FAST = 1.0
"""Broker delivery on a loaded 2-core test machine; the store poll is 30 s here."""


@dataclass
class Subscriber:
    """One WebSocket subscription: every event's seq and how long after its commit it came."""

    conn: ClientConnection
    seqs: list[int] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async for raw in self.conn:
            frame = orjson.loads(raw)
            if frame["type"] == "event":
                self.seqs.append(frame["seq"])
                self.lags.append(time.time() - datetime.fromisoformat(frame["at"]).timestamp())


@dataclass
class Stage:
    """Two workers, a board, its slot, subscribers on both workers, a writer on the first."""

    cluster: LocalCluster
    workers: list[ServerProcess]
    slug: str
    slot: int
    subscribers: list[Subscriber]
    http: httpx.AsyncClient
    base: int
    """The board's seq before the first write."""
    acked: int = 0
    ack_waits: list[tuple[float, float]] = field(default_factory=list)
    """(when the write was sent, how long its acknowledgement took)."""

    async def write(self, seconds: float, stop: asyncio.Event | None = None) -> None:
        """PATCH the board's widget for `seconds` (or until `stop`), one write at a time;
        never cancelled mid-request, so every write that committed is counted."""
        end = time.monotonic() + seconds
        while stop is None or not stop.is_set():
            sent = time.monotonic()
            response = await self.http.patch(
                f"{self.workers[0].base_url}/api/boards/{self.slug}/widgets/n",
                json={"value": self.acked},
            )
            assert response.status_code == 200, response.text
            self.acked += 1
            self.ack_waits.append((sent, time.monotonic() - sent))
            if time.monotonic() >= end:
                return
            await asyncio.sleep(0.02)

    async def counters(self) -> tuple[float, float]:
        """(events the writing worker published, channels both workers found behind the
        store by their poll)."""
        published = polled = 0.0
        for n, worker in enumerate(self.workers):
            text = (await self.http.get(f"{worker.base_url}/metrics")).text
            polled += metric(text, "switchboard_catch_up_fills_total")
            if n == 0:
                published = metric(text, "switchboard_events_published_total")
        return published, polled

    async def delivered(self) -> None:
        """Every acknowledged write reached every subscriber once, in order."""
        head = self.base + self.acked
        board = (await self.http.get(f"{self.workers[0].base_url}/api/boards/{self.slug}")).json()
        assert board["seq"] == head
        await eventually(lambda: all(s.seqs[-1:] in ([head], []) for s in self.subscribers), 40)
        await eventually(lambda: all(len(s.seqs) == self.acked for s in self.subscribers), 40)
        for subscriber in self.subscribers:
            assert subscriber.seqs == list(range(self.base + 1, head + 1))  # no gap, no repeat

    async def through_broker(self) -> None:
        """`SETTLED` more writes, each published and delivered to every subscriber within
        `FAST`, none found by the poll: the broker carries this board again."""
        await self.delivered()
        published, polled = await self.counters()
        for _ in range(SETTLED):
            await self.write(0.0)
        await self.delivered()
        assert all(lag < FAST for s in self.subscribers for lag in s.lags[-SETTLED:])
        assert await self.counters() == (published + SETTLED, polled)

    def longest_lag(self, worker: int | None = None) -> float:
        """The longest any event took from its commit to a subscriber (of one worker)."""
        count = len(self.workers)
        return max(
            lag
            for n, subscriber in enumerate(self.subscribers)
            if worker is None or n % count == worker
            for lag in subscriber.lags
        )


@contextlib.asynccontextmanager
async def stage(
    redis_cluster: LocalCluster, pg_url: str, prefix: str, slug: str
) -> AsyncIterator[Stage]:
    env = production_env(
        pg_url,
        prefix,
        SWITCHBOARD_BROKER_URL=redis_cluster.url,
        SWITCHBOARD_CATCHUP_INTERVAL="30",
        SWITCHBOARD_REDIS_TIMEOUT="1",
    )
    async with (
        serve_processes(env, 2) as workers,
        httpx.AsyncClient(headers=AUTH, timeout=10) as http,
    ):
        url = workers[0].base_url
        assert (await http.post(f"{url}/api/boards", json={"slug": slug})).status_code == 201
        put = await http.put(f"{url}/api/boards/{slug}/widgets/n", json={"kind": "number"})
        assert put.status_code == 201
        base = (await http.get(f"{url}/api/boards/{slug}")).json()["seq"]
        subscribers = []
        for worker in (*workers, *workers):
            conn = await connect(worker.ws_url, additional_headers=AUTH)
            frame = {"type": "subscribe", "channel": channel_name(slug), "since": base}
            await conn.send(orjson.dumps(frame).decode())
            assert orjson.loads(await conn.recv())["type"] == "subscribed"
            subscriber = Subscriber(conn)
            subscriber.task = asyncio.create_task(subscriber.run())
            subscribers.append(subscriber)
        slot = key_slot(f"{prefix}{{{channel_name(slug)}}}".encode())
        try:
            yield Stage(redis_cluster, workers, slug, slot, subscribers, http, base)
        finally:
            for subscriber in subscribers:
                await subscriber.conn.close()
                assert subscriber.task is not None
                subscriber.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await subscriber.task


async def run_fault(play: Stage, fault: Callable[[], float], label: str) -> float:
    """Writes before, during and after `fault` (which returns its own duration), then the
    checks; prints what was measured. Returns how many channel fills the store poll made."""
    await play.write(1.0)
    _, polled = await play.counters()
    stop = asyncio.Event()
    writing = asyncio.create_task(play.write(1e9, stop))
    fault_at = time.monotonic()
    duration = await asyncio.to_thread(fault)
    await asyncio.sleep(3.0)  # writes go on after the cluster is whole again
    stop.set()
    await writing
    await play.delivered()
    _, polled_after = await play.counters()
    longest_ack = max(wait for sent, wait in play.ack_waits if sent >= fault_at)
    await play.through_broker()
    print(
        f"\n{label}: fault {duration:.2f} s; longest delivery {play.longest_lag(0):.2f} s "
        f"on the writing worker, {play.longest_lag(1):.2f} s on the other; "
        f"longest write {longest_ack:.2f} s; {play.acked} writes; "
        f"{polled_after - polled:.0f} channel fills by the store poll"
    )
    return polled_after - polled


async def test_happy_path(redis_cluster: LocalCluster, pg_url: str, prefix: str, slug: str) -> None:
    async with stage(redis_cluster, pg_url, prefix, slug) as play:
        await play.through_broker()


async def test_master_failover(
    redis_cluster: LocalCluster, pg_url: str, prefix: str, slug: str
) -> None:
    async with stage(redis_cluster, pg_url, prefix, slug) as play:
        master = redis_cluster.owner(play.slot)

        def fail_over() -> float:
            master.kill()
            promoted = redis_cluster.wait_promoted(play.slot, master)
            master.start()  # back as a replica of the promoted one
            redis_cluster.wait_ok()
            return promoted

        await run_fault(play, fail_over, "master killed, replica promoted")
        assert redis_cluster.owner(play.slot) is not master


async def test_slot_moves_to_another_master(
    redis_cluster: LocalCluster, pg_url: str, prefix: str, slug: str
) -> None:
    async with stage(redis_cluster, pg_url, prefix, slug) as play:
        source = redis_cluster.owner(play.slot)
        target = next(n for n in redis_cluster.masters() if n is not source)

        def move() -> float:
            started = time.monotonic()
            redis_cluster.move_slot(play.slot, target)
            return time.monotonic() - started

        await run_fault(play, move, "slot moved")
        assert redis_cluster.owner(play.slot) is target


async def test_node_restarts(
    redis_cluster: LocalCluster, pg_url: str, prefix: str, slug: str
) -> None:
    async with stage(redis_cluster, pg_url, prefix, slug) as play:
        master = redis_cluster.owner(play.slot)

        def restart() -> float:
            started = time.monotonic()
            master.kill()
            master.start()
            redis_cluster.wait_ok()
            return time.monotonic() - started

        await run_fault(play, restart, "master restarted")


@pytest.mark.parametrize("seconds", [3.0])
async def test_whole_cluster_unreachable(
    redis_cluster: LocalCluster, pg_url: str, prefix: str, slug: str, seconds: float
) -> None:
    async with stage(redis_cluster, pg_url, prefix, slug) as play:

        def freeze() -> float:
            for node in redis_cluster.live():
                node.signal(signal.SIGSTOP)
            time.sleep(seconds)
            for node in redis_cluster.live():
                node.signal(signal.SIGCONT)
            return seconds + redis_cluster.wait_ok()

        # The broker carried nothing meanwhile: the writing worker, whose publishes failed,
        # polled the store at its fast pace (the other notices within a ping interval, or
        # its healthy-pace poll finds the events: 30 s here, 2 s by default).
        assert await run_fault(play, freeze, "whole cluster frozen") > 0
