"""Redis pub/sub broker on redis-py asyncio, written for the guarantees `broadcaster` lacks.

`broadcaster` 0.3 loses deliveries (its listener stops before the first
SUBSCRIBE is recorded; concurrent first subscribers overwrite each other's
queues), buffers without bound and never reconnects; redis-py's own `PubSub`
reconnects silently, so its user cannot know that messages were missed. Here a
single connection per worker carries every subscription; one reader task owns
it; `subscribe` returns only once Redis has confirmed the SUBSCRIBE; and after
a reconnect every channel is subscribed again and reported through
`on_resubscribed`, so the hub re-reads the store for whatever it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from typing import Any

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from switchboard.broker.base import Broker, BrokerListener, BrokerUnavailable
from switchboard.shutdown import Background

log = structlog.get_logger(__name__)

BACKOFF_MIN = 0.05
BACKOFF_MAX = 2.0
_IO_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


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
        self._prefix = key_prefix
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._publisher = redis
        self._listener: BrokerListener | None = None
        self._wanted: set[str] = set()
        self._pending: dict[str, deque[asyncio.Future[None]]] = {}
        self._conn: AbstractConnection | None = None
        self._up = asyncio.Event()
        self._reader = Background()
        self._last_rx = 0.0

    # Broker
    async def connect(self, listener: BrokerListener) -> None:
        """Start the reader; wait briefly for the first connection, then run degraded if none."""
        self._listener = listener
        self._reader.start(self._run(), "redis broker")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), self._timeout)
        if not self._up.is_set():
            log.warning("broker_unavailable_at_start")

    async def close(self) -> None:
        await self._reader.stop()
        self._listener = None
        self._wanted.clear()

    async def publish(self, channel: str, payload: bytes) -> None:
        try:
            await self._publisher.publish(self._key(channel), payload)
        except _IO_ERRORS as exc:
            raise BrokerUnavailable(str(exc)) from exc

    async def subscribe(self, channel: str) -> None:
        self._wanted.add(channel)
        conn = self._conn
        if conn is None or not conn.is_connected:
            raise BrokerUnavailable("not connected to Redis")
        confirmed = asyncio.get_running_loop().create_future()
        self._pending.setdefault(channel, deque()).append(confirmed)
        try:
            await conn.send_command("SUBSCRIBE", self._key(channel))
            await asyncio.wait_for(asyncio.shield(confirmed), self._timeout)
        except _IO_ERRORS as exc:
            raise BrokerUnavailable(f"SUBSCRIBE {channel} failed: {exc!r}") from exc
        finally:
            waiting = self._pending.get(channel)
            if waiting is not None and confirmed in waiting:
                waiting.remove(confirmed)
            if not confirmed.done():
                confirmed.cancel()

    async def unsubscribe(self, channel: str) -> None:
        self._wanted.discard(channel)
        conn = self._conn
        if conn is not None and conn.is_connected:
            with contextlib.suppress(*_IO_ERRORS):
                await conn.send_command("UNSUBSCRIBE", self._key(channel))

    @property
    def healthy(self) -> bool:
        return self._up.is_set()

    # The reader
    def _subscriber_connection(self) -> AbstractConnection:
        """A connection of its own, outside the pool's count (pub/sub holds it for good),
        made with the pool's settings."""
        conn: AbstractConnection = self._publisher.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        return conn

    def _key(self, channel: str) -> str:
        return self._prefix + channel

    def _channel(self, key: bytes) -> str:
        return key.decode()[len(self._prefix) :]

    async def _run(self) -> None:
        delay = BACKOFF_MIN
        while self._reader.running:
            conn = self._subscriber_connection()
            try:
                await conn.connect()  # type: ignore[no-untyped-call]
                self._conn = conn
                self._last_rx = asyncio.get_running_loop().time()
                if self._wanted:
                    await conn.send_command("SUBSCRIBE", *map(self._key, self._wanted))
                self._up.set()
                if delay > BACKOFF_MIN:
                    log.info("broker_reconnected", channels=len(self._wanted))
                delay = BACKOFF_MIN
                await self._serve(conn)
            except _IO_ERRORS as exc:
                if self._up.is_set() or delay == BACKOFF_MIN:
                    log.warning("broker_connection_lost", error=repr(exc))
            finally:
                self._up.clear()
                self._conn = None
                self._fail_pending()
                with contextlib.suppress(*_IO_ERRORS):
                    await conn.disconnect(nowait=True)
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, BACKOFF_MAX)

    async def _serve(self, conn: AbstractConnection) -> None:
        """Read until the connection fails, with a watchdog for a silently dead peer."""
        watchdog = asyncio.create_task(self._watch(conn), name="redis broker watchdog")
        try:
            while self._reader.running:
                reply = await conn.read_response(timeout=float("inf"))
                self._last_rx = asyncio.get_running_loop().time()
                self._dispatch(reply)
        finally:
            watchdog.cancel()

    async def _watch(self, conn: AbstractConnection) -> None:
        """PING every interval; cut the connection if Redis stays silent for two intervals."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._ping_interval)
            if loop.time() - self._last_rx > 2 * self._ping_interval + self._timeout:
                log.warning("broker_silent")
                await conn.disconnect(nowait=True)
                return
            with contextlib.suppress(*_IO_ERRORS):
                await conn.send_command("PING")

    def _dispatch(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 2:
            return
        kind = reply[0]
        if kind == b"message" and self._listener is not None:
            self._listener.on_message(self._channel(reply[1]), reply[2])
        elif kind == b"subscribe":
            channel = self._channel(reply[1])
            waiting = self._pending.get(channel)
            if waiting:
                waiting.popleft().set_result(None)
                if not waiting:
                    del self._pending[channel]
            elif channel in self._wanted and self._listener is not None:
                # Subscribed again after a reconnect: messages may have been missed meanwhile.
                self._listener.on_resubscribed((channel,))

    def _fail_pending(self) -> None:
        for waiting in self._pending.values():
            for confirmed in waiting:
                if not confirmed.done():
                    confirmed.set_exception(BrokerUnavailable("connection to Redis lost"))
        self._pending.clear()
