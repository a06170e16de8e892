"""Presence against a real Redis: a failed write is retried, not forgotten; concurrent
flushes never leave an older count (or a departed identity) behind; and what a worker reads
follows what changed, not how many boards it holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson
import pytest
from redis.exceptions import RedisError

from switchboard.broker import RedisClient, create_broker
from switchboard.broker.redis import redis_client
from switchboard.realtime.presence import PRESENCE_CHANNEL, Counts, Presence, create_presence
from tests.helpers import RedisServer


@pytest.fixture
async def presence(redis_server: RedisServer, prefix: str) -> AsyncIterator[Presence]:
    """Presence on its own Redis, as a worker builds it (the worker's one Redis client); its
    background loop is not started, so the test decides when flushes happen."""
    redis = redis_client(redis_server.url, timeout=0.5)
    store = create_presence(redis, prefix, ttl=30)
    yield Presence(store, lambda *_: None, interval=1)
    await store.close()
    await redis.aclose(close_connection_pool=True)


async def test_failed_flush_keeps_its_channels(
    presence: Presence, redis_server: RedisServer
) -> None:
    """Redis goes away mid-flush: every channel not written stays dirty, and once Redis is
    back the next flush writes each one's current counts."""
    presence.join("board:a", "key:a")
    assert await presence.who("board:a") == {"key:a": 1}
    redis_server.stop()
    presence.join("board:a", "key:b")
    presence.join("board:b", "anonymous")
    with pytest.raises((RedisError, OSError)):
        await presence.who("board:a")
    presence.join("board:b", "anonymous")
    redis_server.start()  # empty again: only what is flushed from now on is there
    assert await presence.who("board:a") == {"key:a": 1, "key:b": 1}
    assert await presence.who("board:b") == {"anonymous": 2}


PAUSES = range(12)
"""How many loop steps a first flush gets before the test moves on: swept, so that some
run lands while its write is on the wire, however many steps that takes here."""


async def flush_in_flight(presence: Presence, channel: str, pause: int) -> asyncio.Task[Counts]:
    """`key:a` joins `channel` and a request asks `who()`; its flush runs `pause` steps."""
    presence.join(channel, "key:a")
    asking = asyncio.create_task(presence.who(channel))
    for _ in range(pause):
        await asyncio.sleep(0)
    return asking


async def test_concurrent_flushes_leave_no_phantoms(presence: Presence) -> None:
    """One request's flush is still writing when viewers change and another request
    flushes: Redis must end with the newer counts, not the departed identity as well."""
    for pause in PAUSES:
        channel = f"board:{pause}"
        first = await flush_in_flight(presence, channel, pause)
        presence.leave(channel, "key:a")
        presence.join(channel, "key:b")
        await asyncio.gather(first, presence.who(channel))
        assert await presence.who(channel) == {"key:b": 1}, f"after {pause} steps"


async def test_cancelled_flush_leaves_no_phantoms(presence: Presence) -> None:
    """A request that asked `who()` goes away while its flush is writing: the write may
    or may not have reached Redis, and whichever it was, the next flush clears it."""
    for pause in PAUSES:
        channel = f"board:{pause}"
        asking = await flush_in_flight(presence, channel, pause)
        asking.cancel()
        await asyncio.gather(asking, return_exceptions=True)
        presence.leave(channel, "key:a")
        assert await presence.who(channel) == {}, f"after {pause} steps"


class Worker:
    """One worker's presence on the shared Redis, with its own broker connection: the
    broker passes `control:presence` messages to it as the hub does."""

    def __init__(self, redis: RedisClient, prefix: str) -> None:
        self.broker = create_broker(redis, prefix=prefix, timeout=0.5)
        self.frames: list[dict[str, Any]] = []
        self.presence = Presence(
            create_presence(redis, prefix, ttl=30),
            lambda _channel, frame, _public: self.frames.append(orjson.loads(frame)),
            interval=1,
            broker=self.broker,
        )

    def on_message(self, channel: str, payload: bytes) -> None:
        if channel == PRESENCE_CHANNEL:
            self.presence.on_message(payload)

    def on_resubscribed(self, channels: Iterable[str]) -> None:
        self.presence.resubscribed(channels)

    async def start(self) -> None:
        await self.broker.connect(self)
        await self.broker.subscribe(PRESENCE_CHANNEL)

    async def close(self) -> None:
        await self.presence.store.close()
        await self.broker.close()


async def hgetalls(redis: RedisClient) -> int:
    """How many HGETALLs this Redis has run (a read of one board's counts)."""
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))


async def test_reads_follow_changes_not_boards_held(redis_server: RedisServer, prefix: str) -> None:
    """Two workers hold the same 200 boards: once settled, a tick with no change reads
    nothing, and one viewer joining makes one read on each worker, not 400."""
    redis = redis_client(redis_server.url, timeout=0.5)
    one, two = Worker(redis, prefix), Worker(redis, prefix)
    await one.start()
    await two.start()
    boards = [f"board:b{n}" for n in range(200)]
    try:
        for board in boards:
            one.presence.join(board, "anonymous")
            two.presence.join(board, "key:k")

        async def settle() -> None:
            for _ in range(3):
                await one.presence.tick()
                await two.presence.tick()
                await asyncio.sleep(0.05)  # the broker's messages arrive

        await settle()
        for worker in (one, two):  # every board, on each worker: both viewers
            seen: dict[str, dict[str, int]] = {}
            for frame in worker.frames:
                seen.setdefault(frame["channel"], {}).update(frame["changed"])
            assert seen == {key: {"anonymous": 1, "key:k": 1} for key in boards}
        before = await hgetalls(redis)
        await settle()
        assert await hgetalls(redis) == before  # nothing changed: nothing read
        one.frames.clear()
        two.frames.clear()
        one.presence.join(boards[7], "key:other")
        await settle()
        assert await hgetalls(redis) - before == 2  # board 7, once on each worker
        expected = {"type": "presence", "channel": boards[7], "changed": {"key:other": 1}}
        assert one.frames == [expected]
        assert two.frames == [expected]
    finally:
        await one.close()
        await two.close()
        await redis.aclose(close_connection_pool=True)
