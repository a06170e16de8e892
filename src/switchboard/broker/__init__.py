"""Broker adapters, chosen by URL scheme: `memory://` or `redis://`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from switchboard.broker.base import Broker, BrokerListener, BrokerUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

REDIS_SCHEMES = ("redis", "rediss", "unix")


def redis_client(url: str, *, timeout: float, prefix: str = "") -> Redis | None:
    """The worker's one Redis client for `url`, shared by the broker, presence and rate
    limits (one pool, one set of timeouts); None for `memory://`. The caller closes it.
    Its connections are named after the deployment (`client_name`)."""
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        return None
    if scheme in REDIS_SCHEMES:
        from switchboard.broker.redis import redis_client as connect

        return connect(url, timeout=timeout, name=client_name(prefix))
    raise ValueError(f"unsupported broker URL scheme {scheme!r} (use memory:// or redis://)")


def client_name(prefix: str) -> str:
    """`switchboard`, or `switchboard:<prefix>` for a prefixed deployment (a Redis client
    name may hold no spaces: they become `_`)."""
    tail = "".join("_" if ch.isspace() or not ch.isprintable() else ch for ch in prefix)
    return f"switchboard:{tail}" if tail else "switchboard"


def create_broker(redis: Redis | None, *, prefix: str = "", timeout: float = 2.0) -> Broker:
    """Pub/sub over `redis` (from `redis_client`), or in this process when there is none;
    nothing connects until `Broker.connect`."""
    if redis is None:
        from switchboard.broker.memory import MemoryBroker

        return MemoryBroker()
    from switchboard.broker.redis import RedisBroker

    return RedisBroker(redis, key_prefix=prefix, timeout=timeout)


__all__ = [
    "Broker",
    "BrokerListener",
    "BrokerUnavailable",
    "client_name",
    "create_broker",
    "redis_client",
]
