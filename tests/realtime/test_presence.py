"""Presence flushes against a real Redis: a failed write is retried, not forgotten, and
concurrent flushes never leave an older count (or a departed identity) behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.exceptions import RedisError

from switchboard.broker.redis import redis_client
from switchboard.realtime.presence import Counts, Presence, create_presence
from tests.helpers import RedisServer


@pytest.fixture
async def presence(redis_server: RedisServer, prefix: str) -> AsyncIterator[Presence]:
    """Presence on its own Redis, as a worker builds it (the worker's one Redis client); its
    background loop is not started, so the test decides when flushes happen."""
    redis = redis_client(redis_server.url, timeout=0.5)
    store = create_presence(redis, prefix, ttl=30)
    yield Presence(store, lambda *_: None, interval=1, ttl=30)
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
