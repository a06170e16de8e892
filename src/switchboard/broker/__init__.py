"""Broker adapters, chosen by URL scheme: `memory://`, `redis://` or `redis+cluster://`."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

from switchboard.broker.base import Broker, BrokerListener, BrokerUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis, RedisCluster

RedisClient: TypeAlias = "Redis | RedisCluster"
"""The worker's one client: a single Redis, or a cluster (presence and rate limits use
either; their keys carry hash tags, so no command crosses slots)."""

REDIS_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEME = "redis+cluster"


def redis_client(url: str, *, timeout: float, prefix: str = "") -> RedisClient | None:
    """The worker's one Redis client for `url`, shared by the broker, presence and rate
    limits (one pool, one set of timeouts); None for `memory://`. The caller closes it.
    Its connections are named after the deployment (`client_name`)."""
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        return None
    if scheme in REDIS_SCHEMES:
        from switchboard.broker.redis import redis_client as connect

        return connect(url, timeout=timeout, name=client_name(prefix))
    if scheme == CLUSTER_SCHEME:
        from switchboard.broker.cluster import cluster_client

        return cluster_client(url, timeout=timeout, name=client_name(prefix))
    raise ValueError(
        f"unsupported broker URL scheme {scheme!r} (use memory://, redis:// or redis+cluster://)"
    )


def client_name(prefix: str) -> str:
    """`switchboard`, or `switchboard:<prefix>` for a prefixed deployment (a Redis client
    name may hold no spaces: they become `_`)."""
    tail = "".join("_" if ch.isspace() or not ch.isprintable() else ch for ch in prefix)
    return f"switchboard:{tail}" if tail else "switchboard"


async def close_client(redis: RedisClient) -> None:
    """Close the client and every connection of its pool(s)."""
    from redis.asyncio import RedisCluster

    if isinstance(redis, RedisCluster):
        await redis.aclose()
    else:
        await redis.aclose(close_connection_pool=True)


def create_broker(redis: RedisClient | None, *, prefix: str = "", timeout: float = 2.0) -> Broker:
    """Pub/sub over `redis` (from `redis_client`), or in this process when there is none;
    nothing connects until `Broker.connect`."""
    if redis is None:
        from switchboard.broker.memory import MemoryBroker

        return MemoryBroker()
    from redis.asyncio import RedisCluster

    if isinstance(redis, RedisCluster):
        from switchboard.broker.cluster import ClusterBroker

        return ClusterBroker(redis, key_prefix=prefix, timeout=timeout)
    from switchboard.broker.redis import RedisBroker

    return RedisBroker(redis, key_prefix=prefix, timeout=timeout)


__all__ = [
    "CLUSTER_SCHEME",
    "REDIS_SCHEMES",
    "Broker",
    "BrokerListener",
    "BrokerUnavailable",
    "RedisClient",
    "client_name",
    "close_client",
    "create_broker",
    "redis_client",
]
