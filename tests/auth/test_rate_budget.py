"""The write rate limit's leased budget on a real Redis: two limiters (two workers) never
allow more than the limit in a second, refuse at most the stated tolerance early, and
ask Redis once per slice of the budget, not once per write."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from switchboard.auth.limits import RateLimiter, RedisRateLimiter
from switchboard.errors import RateLimited
from tests.conftest import REDIS_URL


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


async def _admitted(limiter: RateLimiter, identity: str) -> bool:
    try:
        await limiter.check(identity)
    except RateLimited:
        return False
    return True


async def _one_second(limiters: list[RateLimiter], writes: int) -> tuple[str, int, list[bool]]:
    """`writes` checks of one new credential, spread over `limiters`, all in one
    second: tried again in the next second if they straddled two."""
    while True:
        await asyncio.sleep(1.01 - time.time() % 1)  # just after a second begins
        identity, window = uuid.uuid4().hex, int(time.time())
        turns = [limiters[i % len(limiters)] for i in range(writes)]
        admitted = await asyncio.gather(*(_admitted(limiter, identity) for limiter in turns))
        if int(time.time()) == window:
            return identity, window, admitted


async def test_two_limiters_share_one_budget(redis: Redis, prefix: str) -> None:
    one, two = (RedisRateLimiter(100, redis, prefix, lambda: True) for _ in range(2))
    assert one.slice == 10
    identity, window, admitted = await _one_second([one, two], 300)
    tolerance = (2 - 1) * (one.slice - 1)  # what the other worker leased and did not spend
    assert 100 - tolerance <= sum(admitted) <= 100
    leases = int(await redis.get(f"{prefix}rate:{identity}:{window}") or 0) // one.slice
    assert leases <= 100 // one.slice + 2  # + one refused lease per limiter; not 300 round trips


async def test_a_small_limit_is_counted_write_by_write(redis: Redis, prefix: str) -> None:
    """Below `SLICES` writes per second a slice is one write: exact across workers."""
    one, two = (RedisRateLimiter(4, redis, prefix, lambda: True) for _ in range(2))
    assert one.slice == 1
    _, _, admitted = await _one_second([one, two], 12)
    assert sum(admitted) == 4


async def test_unreachable_redis_counts_locally_without_waiting(prefix: str) -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0")
    try:
        limiter = RedisRateLimiter(3, dead, prefix, lambda: True)
        started = time.monotonic()
        _, _, admitted = await _one_second([limiter], 6)
        assert sum(admitted) == 3  # the limit, counted by this worker alone
        assert time.monotonic() - started < 2.5  # the wait for a second, no waits on Redis
    finally:
        await dead.aclose()
