"""Both broker backends against the contract, including the cases `broadcaster` gets wrong,
and the Redis adapter through a real Redis outage."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import pytest
from redis.asyncio import RedisCluster

from switchboard.broker import (
    Broker,
    BrokerUnavailable,
    close_client,
    create_broker,
    redis_client,
)
from switchboard.broker.cluster import ClusterBroker
from switchboard.broker.redis import RedisBroker
from tests.conftest import REDIS_URL
from tests.helpers import RedisServer, eventually


class Recorder:
    """A listener that keeps what it is told."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.resubscribed: list[str] = []
        self.changed = asyncio.Event()

    def on_message(self, channel: str, payload: bytes) -> None:
        self.messages.append((channel, payload))
        self.changed.set()

    def on_resubscribed(self, channels: Iterable[str]) -> None:
        self.resubscribed.extend(channels)
        self.changed.set()

    async def wait_for(self, predicate: object, timeout: float = 5.0) -> None:
        async def loop() -> None:
            while not callable(predicate) or not predicate():
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(loop(), timeout)


@asynccontextmanager
async def broker_at(
    url: str, *, prefix: str = "", timeout: float = 2.0, ping_interval: float = 5.0
) -> AsyncIterator[Broker]:
    """A broker as a worker builds it: on the worker's one Redis client (closed after it)."""
    redis = redis_client(url, timeout=timeout)
    if redis is None:
        broker: Broker = create_broker(None)
    elif isinstance(redis, RedisCluster):
        broker = ClusterBroker(
            redis, key_prefix=prefix, timeout=timeout, ping_interval=ping_interval
        )
    else:
        broker = RedisBroker(redis, key_prefix=prefix, timeout=timeout, ping_interval=ping_interval)
    try:
        yield broker
    finally:
        await broker.close()
        if redis is not None:
            await close_client(redis)


@pytest.fixture(params=["memory", "redis", "cluster"])
async def broker(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Broker]:
    if request.param == "cluster":
        url = request.getfixturevalue("redis_cluster").url
    else:
        url = "memory://" if request.param == "memory" else REDIS_URL
    async with broker_at(url, prefix=prefix) as instance:
        yield instance


async def test_delivers_to_subscribed_channel_only(broker: Broker) -> None:
    rec = Recorder()
    await broker.connect(rec)
    assert broker.healthy
    await broker.subscribe("board:a")
    await broker.publish("board:b", b"not for us")
    await broker.publish("board:a", b"1")
    await rec.wait_for(lambda: len(rec.messages) >= 1)
    await asyncio.sleep(0.05)
    assert rec.messages == [("board:a", b"1")]


async def test_unsubscribe_stops_delivery(broker: Broker) -> None:
    rec = Recorder()
    await broker.connect(rec)
    await broker.subscribe("board:a")
    await broker.unsubscribe("board:a")
    await broker.subscribe("board:c")
    await broker.publish("board:a", b"gone")
    await broker.publish("board:c", b"here")
    await rec.wait_for(lambda: len(rec.messages) >= 1)
    await asyncio.sleep(0.05)
    assert rec.messages == [("board:c", b"here")]


async def test_concurrent_first_subscribers_all_receive(broker: Broker) -> None:
    """The broadcaster failure: many channels subscribed at once, then published at once."""
    rec = Recorder()
    await broker.connect(rec)
    channels = [f"board:c{i}" for i in range(200)]
    await asyncio.gather(*(broker.subscribe(c) for c in channels))
    await asyncio.gather(*(broker.publish(c, c.encode()) for c in channels))
    await rec.wait_for(lambda: len(rec.messages) >= len(channels))
    assert sorted(rec.messages) == sorted((c, c.encode()) for c in channels)


async def test_messages_on_one_channel_keep_their_order(broker: Broker) -> None:
    rec = Recorder()
    await broker.connect(rec)
    await broker.subscribe("board:o")
    for i in range(500):
        await broker.publish("board:o", str(i).encode())
    await rec.wait_for(lambda: len(rec.messages) >= 500)
    assert [int(p) for _, p in rec.messages] == list(range(500))


async def test_prefixes_isolate_deployments(prefix: str) -> None:
    ours, theirs = Recorder(), Recorder()
    async with (
        broker_at(REDIS_URL, prefix=prefix) as a,
        broker_at(REDIS_URL, prefix=prefix + "other:") as b,
    ):
        await a.connect(ours)
        await b.connect(theirs)
        await a.subscribe("board:x")
        await b.subscribe("board:x")
        await a.publish("board:x", b"mine")
        await ours.wait_for(lambda: ours.messages)
        await asyncio.sleep(0.1)
        assert theirs.messages == []


async def test_close_leaves_no_tasks(prefix: str) -> None:
    before = set(asyncio.all_tasks())
    async with broker_at(REDIS_URL, prefix=prefix) as broker:
        await broker.connect(Recorder())
        await broker.subscribe("board:t")
    await asyncio.sleep(0)
    leaked = {t for t in asyncio.all_tasks() - before if not t.done()}
    assert leaked == set()


async def test_redis_outage_and_recovery(redis_server: RedisServer) -> None:
    """Publish and subscribe fail fast while Redis is gone; every channel comes back by itself."""
    rec = Recorder()
    async with broker_at(redis_server.url, timeout=0.5) as broker:
        await broker.connect(rec)
        await broker.subscribe("board:before")
        redis_server.stop()
        await eventually(lambda: not broker.healthy)

        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(BrokerUnavailable):
            await broker.publish("board:before", b"lost")
        with pytest.raises(BrokerUnavailable):
            await broker.subscribe("board:during")
        assert loop.time() - started < 2

        redis_server.start()
        await rec.wait_for(lambda: {"board:before", "board:during"} <= set(rec.resubscribed))
        assert broker.healthy
        await broker.publish("board:before", b"1")
        await broker.publish("board:during", b"2")
        await rec.wait_for(lambda: len(rec.messages) >= 2)
        assert sorted(rec.messages) == [("board:before", b"1"), ("board:during", b"2")]


async def test_redis_down_at_start(redis_server: RedisServer) -> None:
    """A worker that starts while Redis is down runs degraded and connects later."""
    redis_server.stop()
    rec = Recorder()
    async with broker_at(redis_server.url, timeout=0.3) as broker:
        await broker.connect(rec)
        assert not broker.healthy
        with pytest.raises(BrokerUnavailable):
            await broker.subscribe("board:early")
        redis_server.start()
        await rec.wait_for(lambda: "board:early" in rec.resubscribed)
        await broker.publish("board:early", b"x")
        await rec.wait_for(lambda: rec.messages)
        assert rec.messages == [("board:early", b"x")]


async def test_silent_redis_is_detected(redis_server: RedisServer) -> None:
    """A Redis that stops answering (SIGSTOP, a dead link) is cut by the watchdog and replaced."""
    assert redis_server.process is not None
    rec = Recorder()
    async with broker_at(redis_server.url, timeout=0.3, ping_interval=0.2) as broker:
        await broker.connect(rec)
        await broker.subscribe("board:s")
        redis_server.process.send_signal(19)  # SIGSTOP
        await eventually(lambda: not broker.healthy)
        redis_server.process.send_signal(18)  # SIGCONT
        await rec.wait_for(lambda: "board:s" in rec.resubscribed)
