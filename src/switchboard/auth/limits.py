"""Per-credential write limit: writes per second, shared by every worker.

The budget belongs to a credential family (`Principal.family`): an API key and every
viewer token minted from it spend one budget, so minting tokens does not multiply it.

The write limit is a one-second fixed window counted where every worker sees
it: in Redis in production, in memory in the embedded single process. A worker
does not ask Redis for every write: it leases a slice of the credential's budget
for the second (`INCRBY` of `slice` on one key per credential and second) and
spends it locally, one Redis round trip per slice instead of per write
(bench/NOTES.md, write path). Leases never add up past the limit, so all workers
together never allow more than it; a slice a worker leased and did not spend is
lost for that second, so a credential can be refused up to (workers - 1) x
(slice - 1) writes early (docs/security.md). If Redis is unreachable each worker
counts on its own rather than failing or delaying writes: the limiter protects
the service, it must not become its outage.
"""

from __future__ import annotations

import abc
import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable

import structlog
from redis.exceptions import RedisError

from switchboard.broker import RedisClient
from switchboard.errors import RateLimited
from switchboard.names import hash_tag

log = structlog.get_logger(__name__)


class RateLimiter(abc.ABC):
    def __init__(self, per_second: int) -> None:
        self.per_second = per_second

    async def check(self, identity: str) -> None:
        """Count one write by `identity`; `RateLimited` (with `Retry-After`) past the limit."""
        if self.per_second <= 0:
            return
        now = time.time()
        window = int(now)
        if not await self._admit(identity, window):
            retry = max(1, math.ceil(window + 1 - now))
            raise RateLimited(
                f"at most {self.per_second} writes per second per credential "
                "(a key and the tokens it minted share them)",
                headers={"Retry-After": str(retry)},
            )

    @abc.abstractmethod
    async def _admit(self, identity: str, window: int) -> bool:
        """Count one write by `identity` in `window`: whether it is within the limit."""


class MemoryRateLimiter(RateLimiter):
    def __init__(self, per_second: int) -> None:
        super().__init__(per_second)
        self._window = 0
        self._counts: Counter[str] = Counter()

    async def _admit(self, identity: str, window: int) -> bool:
        if window != self._window:
            self._window, self._counts = window, Counter()
        self._counts[identity] += 1
        return self._counts[identity] <= self.per_second


class RedisRateLimiter(RateLimiter):
    """Leases budget from Redis, shared by every worker. While the broker reports Redis
    down (or a lease fails) it counts here instead, without waiting on a dead connection:
    each worker then allows the limit on its own, so N workers allow up to N times it."""

    COUNT_TIMEOUT = 0.5
    """A write waits at most this long for a lease before it is counted locally."""
    SLICES = 10
    """A lease is this fraction of the limit (at least one write)."""

    def __init__(
        self, per_second: int, redis: RedisClient, prefix: str, healthy: Callable[[], bool]
    ) -> None:
        super().__init__(per_second)
        self.slice = max(1, math.ceil(per_second / self.SLICES))
        self._redis = redis
        self._prefix = prefix
        self._healthy = healthy
        self._local = MemoryRateLimiter(per_second)
        self._window = 0
        self._left: dict[str, int] = {}  # leased and not yet spent, this window
        self._spent: set[str] = set()  # no budget left in Redis this window
        self._leasing: dict[str, asyncio.Task[None]] = {}

    async def _admit(self, identity: str, window: int) -> bool:
        if not self._healthy():
            return await self._local._admit(identity, window)
        while True:
            if window < self._window:  # waited into the next second: judged in that one
                window = self._window
            elif window > self._window:
                self._window, self._left, self._spent = window, {}, set()
            if self._left.get(identity, 0) > 0:
                self._left[identity] -= 1
                return True
            if identity in self._spent:
                return False
            lease = self._leasing.get(identity)
            if lease is None:  # one lease in flight per credential: the others wait for it
                lease = asyncio.ensure_future(self._lease(identity, window))
                self._leasing[identity] = lease
                lease.add_done_callback(lambda done: self._leased(identity, done))
            try:
                await asyncio.shield(lease)
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("rate_limiter_unavailable", error=repr(exc))
                return await self._local._admit(identity, window)

    def _leased(self, identity: str, lease: asyncio.Task[None]) -> None:
        if self._leasing.get(identity) is lease:
            del self._leasing[identity]

    async def _lease(self, identity: str, window: int) -> None:
        """Take up to `slice` writes of `window`'s budget from Redis; what the other
        workers already took counts first."""
        key = f"{self._prefix}rate:{hash_tag(identity)}:{window}"  # one slot per credential
        async with asyncio.timeout(self.COUNT_TIMEOUT):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.incrby(key, self.slice)
                pipe.expire(key, 2)
                total, _ = await pipe.execute()
        if window != self._window:
            return  # that second is over
        before = int(total) - self.slice
        self._left[identity] = max(0, min(self.slice, self.per_second - before))
        if int(total) >= self.per_second:
            self._spent.add(identity)


def create_limiter(
    per_second: int, redis: RedisClient | None, prefix: str, healthy: Callable[[], bool]
) -> RateLimiter:
    """Counted in the worker's Redis when there is one (shared by all workers; `healthy`
    says whether Redis answers right now), else in memory."""
    if redis is not None:
        return RedisRateLimiter(per_second, redis, prefix, healthy)
    return MemoryRateLimiter(per_second)
