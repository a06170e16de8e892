"""Redis pub/sub broker on redis-py asyncio, written for the guarantees `broadcaster` lacks.

`broadcaster` 0.3 loses deliveries (its listener stops before the first
SUBSCRIBE is recorded; concurrent first subscribers overwrite each other's
queues), buffers without bound and never reconnects. Here a single connection
per worker carries every subscription (`link.SubscriberLink`: confirmed
subscribes, resubscribe and report after a reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from switchboard.broker.base import Broker, BrokerListener, BrokerUnavailable
from switchboard.broker.link import CLASSIC, IO_ERRORS, Naming, SubscriberLink

log = structlog.get_logger(__name__)

POOL_SIZE = 32
"""Concurrent commands wait for one of this many connections rather than open hundreds."""


def redis_client(url: str, *, timeout: float, name: str = "switchboard") -> Redis:
    """The worker's one Redis client: one pool and one set of timeouts (`timeout` to connect,
    for every command, and for a free pooled connection) for publishes, presence and rate
    limits; the broker's subscriber connection is made by the same pool.

    Every connection is named (`CLIENT SETNAME`), so an operator's `CLIENT LIST` tells
    Switchboard's connections, and each deployment's (`name`), from other programs'.

    RESP2 throughout: pub/sub replies then arrive as plain arrays that the broker's reader
    reads itself (redis-py 8 defaults to RESP3, whose push frames bypass `read_response`)."""
    return Redis(
        connection_pool=BlockingConnectionPool.from_url(
            url,
            protocol=2,
            max_connections=POOL_SIZE,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            socket_keepalive=True,
            client_name=name,
        ),
        retry=Retry(NoBackoff(), 1),  # one retry replaces a pooled connection Redis dropped
    )


class RedisBroker(Broker):
    """One subscriber connection per worker; publishes go through the shared client, which
    the caller owns (and closes after the broker)."""

    def __init__(
        self,
        redis: Redis,
        *,
        key_prefix: str = "",
        timeout: float = 2.0,
        ping_interval: float = 5.0,
    ) -> None:
        self._naming = Naming(key_prefix)
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._publisher = redis
        self._link: SubscriberLink | None = None

    # Broker
    async def connect(self, listener: BrokerListener) -> None:
        """Start the reader; wait briefly for the first connection, then run degraded if none."""
        self._link = link = SubscriberLink(
            self._subscriber_connection,
            verbs=CLASSIC,
            naming=self._naming,
            listener=listener,
            timeout=self._timeout,
            ping_interval=self._ping_interval,
        )
        link.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(link.up.wait(), self._timeout)
        if not link.healthy:
            log.warning("broker_unavailable_at_start")

    async def close(self) -> None:
        if self._link is not None:
            await self._link.stop()
            self._link = None

    async def publish(self, channel: str, payload: bytes) -> None:
        try:
            await self._publisher.publish(self._naming.key(channel), payload)
        except IO_ERRORS as exc:
            raise BrokerUnavailable(str(exc)) from exc

    async def subscribe(self, channel: str) -> None:
        if self._link is None:
            raise BrokerUnavailable("broker not connected")
        await self._link.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        if self._link is not None:
            await self._link.unsubscribe(channel)

    @property
    def healthy(self) -> bool:
        return self._link is not None and self._link.healthy

    def _subscriber_connection(self) -> AbstractConnection:
        """A connection of its own, outside the pool's count (pub/sub holds it for good),
        made with the pool's settings."""
        conn: AbstractConnection = self._publisher.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        return conn
