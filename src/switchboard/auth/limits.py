"""Per-credential write limit: writes per second, shared by every worker.

The write limit is a one-second fixed window counted where every worker sees
it: in Redis in production (`INCR` + `EXPIRE` on one key per credential and
second), in memory in the embedded single process. If Redis is unreachable
each worker counts on its own rather than failing or delaying writes: the
limiter protects the service, it must not become its outage.
"""

from __future__ import annotations

import abc
import asyncio
import math
import time
from collections import Counter
from collections.abc import Callable

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from switchboard.errors import RateLimited

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
        if await self._count(identity, window) > self.per_second:
            retry = max(1, math.ceil(window + 1 - now))
            raise RateLimited(
                f"at most {self.per_second} writes per second per credential",
                headers={"Retry-After": str(retry)},
            )

    @abc.abstractmethod
    async def _count(self, identity: str, window: int) -> int:
        """This write's number within `window` for `identity`."""


class MemoryRateLimiter(RateLimiter):
    def __init__(self, per_second: int) -> None:
        super().__init__(per_second)
        self._window = 0
        self._counts: Counter[str] = Counter()

    async def _count(self, identity: str, window: int) -> int:
        if window != self._window:
            self._window, self._counts = window, Counter()
        self._counts[identity] += 1
        return self._counts[identity]


class RedisRateLimiter(RateLimiter):
    """Counts in Redis, shared by every worker. While the broker reports Redis down (or a
    count fails) it counts here instead, without waiting on a dead connection: each
    worker then allows the limit on its own, so N workers allow up to N times it."""

    COUNT_TIMEOUT = 0.5
    """A write waits at most this long for the count before it is counted locally."""

    def __init__(
        self, per_second: int, redis: Redis, prefix: str, healthy: Callable[[], bool]
    ) -> None:
        super().__init__(per_second)
        self._redis = redis
        self._prefix = prefix
        self._healthy = healthy
        self._local = MemoryRateLimiter(per_second)

    async def _count(self, identity: str, window: int) -> int:
        if not self._healthy():
            return await self._local._count(identity, window)
        key = f"{self._prefix}rate:{identity}:{window}"
        try:
            async with asyncio.timeout(self.COUNT_TIMEOUT):
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, 2)
                    count, _ = await pipe.execute()
            return int(count)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("rate_limiter_unavailable", error=repr(exc))
            return await self._local._count(identity, window)


def create_limiter(
    per_second: int, redis: Redis | None, prefix: str, healthy: Callable[[], bool]
) -> RateLimiter:
    """Counted in the worker's Redis when there is one (shared by all workers; `healthy`
    says whether Redis answers right now), else in memory."""
    if redis is not None:
        return RedisRateLimiter(per_second, redis, prefix, healthy)
    return MemoryRateLimiter(per_second)
