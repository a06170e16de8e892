"""Broker adapters, chosen by URL scheme: `memory://` or `redis://`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.broker.base import Broker, BrokerListener, BrokerUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

REDIS_SCHEMES = ("redis", "rediss", "unix")


def redis_client(url: str, *, timeout: float) -> Redis | None:
    """The worker's one Redis client for `url`, shared by the broker, presence and rate
    limits (one pool, one set of timeouts); None for `memory://`. The caller closes it."""
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        return None
    if scheme in REDIS_SCHEMES:
        from switchboard.broker.redis import redis_client as connect

        return connect(url, timeout=timeout)
    raise ValueError(f"unsupported broker URL scheme {scheme!r} (use memory:// or redis://)")


def create_broker(redis: Redis | None, *, prefix: str = "", timeout: float = 2.0) -> Broker:
    """Pub/sub over `redis` (from `redis_client`), or in this process when there is none;
    nothing connects until `Broker.connect`."""
    if redis is None:
        from switchboard.broker.memory import MemoryBroker

        return MemoryBroker()
    from switchboard.broker.redis import RedisBroker

    return RedisBroker(redis, key_prefix=prefix, timeout=timeout)


__all__ = ["Broker", "BrokerListener", "BrokerUnavailable", "create_broker", "redis_client"]
