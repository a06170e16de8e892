"""The write rate limit's leased budget on a real Redis: two limiters (two workers) never
allow more than the limit in a second, refuse at most the stated tolerance early, and
ask Redis once per slice of the budget, not once per write; and on real servers, one
budget per credential family (a key and the tokens it minted)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from switchboard.auth.limits import RateLimiter, RedisRateLimiter
from switchboard.errors import RateLimited
from switchboard.names import hash_tag
from tests.conftest import REDIS_URL, backend_settings
from tests.helpers import ADMIN_KEY, LiveServer, start_server


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
    leases = int(await redis.get(f"{prefix}rate:{hash_tag(identity)}:{window}") or 0) // one.slice
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


# One budget per credential family, on real servers: a key and the tokens minted from it
# (the bootstrap key and its tokens likewise) together get the limit, not the limit each.

LIMIT = 4
"""Below `SLICES`: counted write by write, exact across workers."""


async def _family(server: LiveServer, family: str) -> list[str]:
    """A credential and a `write` token minted from it."""
    if family == "bootstrap":
        credential = ADMIN_KEY
    else:
        created = await server.http.post("/api/keys", json={"role": "write"})
        assert created.status_code == 201, created.text
        credential = created.json()["key"]
    minted = await server.http.post(
        "/api/tokens", json={"role": "write"}, headers=_bearer(credential)
    )
    assert minted.status_code == 201, minted.text
    return [credential, minted.json()["token"]]


def _bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


async def _written_in_one_second(
    servers: list[LiveServer], slug: str, credentials: list[str], each: int
) -> list[int]:
    """`each` writes per credential, spread over `servers`, all within one second (tried
    again in the next one if they straddled two): how many of each were admitted."""
    path = f"/api/boards/{slug}/widgets/w"
    calls = [
        (credential, servers[i % len(servers)]) for credential in credentials for i in range(each)
    ]
    for _ in range(5):
        await asyncio.sleep(1.02 - time.time() % 1)
        window = int(time.time())
        answers = await asyncio.gather(
            *(
                server.http.put(path, json={"kind": "number", "value": 1}, headers=_bearer(c))
                for c, server in calls
            )
        )
        if int(time.time()) != window:
            continue
        assert {a.status_code for a in answers} <= {200, 201, 429}, [a.text for a in answers]
        return [
            sum(
                a.status_code != 429
                for (c, _), a in zip(calls, answers, strict=True)
                if c == credential
            )
            for credential in credentials
        ]
    raise AssertionError("five tries, and the writes never fitted in one second")


@pytest.mark.parametrize("family", ["key", "bootstrap"])
@pytest.mark.parametrize("backend", ["embedded", "production"])
async def test_a_key_and_its_tokens_share_one_budget(
    backend: str, family: str, tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    settings = backend_settings(backend, tmp_path, pg_url, prefix, write_rate_limit=LIMIT)
    async with start_server(settings) as live:
        await live.create_board(slug)
        credentials = await _family(live, family)
        other = await _family(live, "key")  # another family: a budget of its own
        admitted = await _written_in_one_second([live], slug, credentials + other[:1], 6)
        assert sum(admitted[:2]) == LIMIT, admitted  # not LIMIT for each of the two
        assert admitted[2] == LIMIT, admitted


async def test_the_family_budget_holds_across_workers(
    tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    settings = backend_settings("production", tmp_path, pg_url, prefix, write_rate_limit=LIMIT)
    async with start_server(settings) as one, start_server(settings) as two:
        await one.create_board(slug)
        credentials = await _family(one, "key")
        admitted = await _written_in_one_second([one, two], slug, credentials, 6)
        assert sum(admitted) == LIMIT, admitted  # not LIMIT per credential per worker
