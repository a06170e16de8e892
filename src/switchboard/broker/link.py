"""One subscriber connection, with the guarantees both Redis brokers are built on.

redis-py's own `PubSub` reconnects silently, so its user cannot know that messages were
missed. Here one reader task owns the connection; `subscribe` returns only once Redis has
confirmed it; after a reconnect every channel of the link is subscribed again and reported
through `on_resubscribed`, so the hub re-reads the store for whatever it missed. The single
Redis broker runs one link (SUBSCRIBE); the cluster broker one per master (SSUBSCRIBE).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError, ResponseError

from switchboard.broker.base import BrokerListener, BrokerUnavailable
from switchboard.names import hash_tag
from switchboard.shutdown import Background

log = structlog.get_logger(__name__)

BACKOFF_MIN = 0.05
BACKOFF_MAX = 2.0
IO_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


@dataclass(frozen=True)
class Verbs:
    """The pub/sub dialect: classic (`SUBSCRIBE`, `message`) or sharded (`SSUBSCRIBE`,
    `smessage`); the reply kinds are the command names in lower case."""

    subscribe: str
    unsubscribe: str
    message: bytes

    @property
    def subscribed(self) -> bytes:
        return self.subscribe.lower().encode()

    @property
    def unsubscribed(self) -> bytes:
        return self.unsubscribe.lower().encode()


CLASSIC = Verbs("SUBSCRIBE", "UNSUBSCRIBE", b"message")
SHARDED = Verbs("SSUBSCRIBE", "SUNSUBSCRIBE", b"smessage")


@dataclass(frozen=True)
class Naming:
    """How a channel is named on Redis (the deployment prefix, a hash tag) and back."""

    prefix: str = ""
    tagged: bool = False
    """`{channel}` after the prefix: a cluster then hashes the channel alone (names.py)."""

    def key(self, channel: str) -> str:
        return self.prefix + (hash_tag(channel) if self.tagged else channel)

    def channel(self, key: bytes) -> str:
        name = key.decode()[len(self.prefix) :]
        return name[1:-1] if self.tagged else name


class SubscriberLink:
    """One subscriber connection to one Redis node and the channels wanted on it.

    `on_lost` is called when the connection drops (the cluster broker then checks whether
    the node still serves these channels); `on_dropped` when Redis itself ends the
    subscription of a wanted channel (a cluster slot moved to another node)."""

    def __init__(
        self,
        make_connection: Callable[[], AbstractConnection],
        *,
        verbs: Verbs,
        naming: Naming,
        listener: BrokerListener,
        timeout: float,
        ping_interval: float,
        name: str = "redis broker",
        on_lost: Callable[[], None] | None = None,
        on_dropped: Callable[[str], None] | None = None,
    ) -> None:
        self._make_connection = make_connection
        self._verbs = verbs
        self._naming = naming
        self._listener = listener
        self._timeout = timeout
        self._ping_interval = ping_interval
        self._name = name
        self._on_lost = on_lost
        self._on_dropped = on_dropped
        self.wanted: set[str] = set()
        self._pending: dict[str, deque[asyncio.Future[None]]] = {}
        self._conn: AbstractConnection | None = None
        self.up = asyncio.Event()
        self._tried = asyncio.Event()  # the first connection attempt is over
        self._reader = Background()
        self._last_rx = 0.0

    def start(self) -> None:
        self._reader.start(self._run(), self._name)

    async def stop(self) -> None:
        await self._reader.stop()
        self.wanted.clear()

    async def subscribe(self, channel: str) -> None:
        """Return once Redis confirmed; `BrokerUnavailable` if not connected or no answer
        in time (the channel stays wanted: subscribed and reported on reconnect)."""
        self.wanted.add(channel)
        if not self._tried.is_set():  # a link just started: give it its first connection
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._tried.wait(), self._timeout)
        conn = self._conn
        if conn is None or not conn.is_connected:
            raise BrokerUnavailable(f"{self._name}: not connected")
        confirmed = asyncio.get_running_loop().create_future()
        self._pending.setdefault(channel, deque()).append(confirmed)
        try:
            await conn.send_command(self._verbs.subscribe, self._naming.key(channel))
            await asyncio.wait_for(asyncio.shield(confirmed), self._timeout)
        except IO_ERRORS as exc:
            raise BrokerUnavailable(f"{self._verbs.subscribe} {channel} failed: {exc!r}") from exc
        finally:
            waiting = self._pending.get(channel)
            if waiting is not None and confirmed in waiting:
                waiting.remove(confirmed)
            if not confirmed.done():
                confirmed.cancel()

    async def adopt(self, channel: str) -> None:
        """Subscribe without waiting: the confirmation is reported as `on_resubscribed`
        (the channel came from elsewhere, messages may have been missed meanwhile)."""
        self.wanted.add(channel)
        await self._send(self._verbs.subscribe, channel)

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering `channel` here. Never raises for an outage."""
        self.wanted.discard(channel)
        await self._send(self._verbs.unsubscribe, channel)

    async def _send(self, verb: str, channel: str) -> None:
        conn = self._conn
        if conn is not None and conn.is_connected:
            with contextlib.suppress(*IO_ERRORS):
                async with asyncio.timeout(self._timeout):
                    await conn.send_command(verb, self._naming.key(channel))

    @property
    def healthy(self) -> bool:
        return self.up.is_set()

    async def _run(self) -> None:
        delay = BACKOFF_MIN
        while self._reader.running:
            conn = self._make_connection()
            try:
                async with asyncio.timeout(self._timeout):
                    await conn.connect()  # type: ignore[no-untyped-call]
                self._conn = conn
                self._last_rx = asyncio.get_running_loop().time()
                if self.wanted:
                    await self._subscribe_all(conn)
                self.up.set()
                self._tried.set()
                if delay > BACKOFF_MIN:
                    log.info("broker_reconnected", link=self._name, channels=len(self.wanted))
                delay = BACKOFF_MIN
                await self._serve(conn)
            except IO_ERRORS as exc:
                if self.up.is_set() or delay == BACKOFF_MIN:
                    log.warning("broker_connection_lost", link=self._name, error=repr(exc))
            finally:
                was_up = self.up.is_set()
                self.up.clear()
                self._tried.set()
                self._conn = None
                self._fail_pending()
                with contextlib.suppress(*IO_ERRORS):
                    await conn.disconnect(nowait=True)
                if self._on_lost is not None and (was_up or delay == BACKOFF_MIN):
                    self._on_lost()
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, BACKOFF_MAX)

    async def _subscribe_all(self, conn: AbstractConnection) -> None:
        """Every wanted channel again; a sharded SSUBSCRIBE takes one slot at a time, so
        one command per channel there."""
        keys = [self._naming.key(channel) for channel in self.wanted]
        if self._verbs is CLASSIC:
            await conn.send_command(self._verbs.subscribe, *keys)
        else:
            for key in keys:
                await conn.send_command(self._verbs.subscribe, key)

    async def _serve(self, conn: AbstractConnection) -> None:
        """Read until the connection fails, with a watchdog for a silently dead peer."""
        watchdog = asyncio.create_task(self._watch(conn), name=f"{self._name} watchdog")
        try:
            while self._reader.running:
                try:
                    reply = await conn.read_response(timeout=float("inf"))
                except ResponseError as exc:
                    # A refused (S)SUBSCRIBE (MOVED: the node no longer owns the slot).
                    log.warning("broker_refused", link=self._name, error=repr(exc))
                    if self._on_lost is not None:
                        self._on_lost()
                    continue
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
                log.warning("broker_silent", link=self._name)
                await conn.disconnect(nowait=True)
                return
            with contextlib.suppress(*IO_ERRORS):
                await conn.send_command("PING")

    def _dispatch(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 2:
            return
        kind = reply[0]
        if kind == self._verbs.message:
            self._listener.on_message(self._naming.channel(reply[1]), reply[2])
            return
        channel = self._naming.channel(reply[1])
        if kind == self._verbs.subscribed:
            waiting = self._pending.get(channel)
            if waiting:
                waiting.popleft().set_result(None)
                if not waiting:
                    del self._pending[channel]
            elif channel in self.wanted:
                # Subscribed again after a reconnect: messages may have been missed meanwhile.
                self._listener.on_resubscribed((channel,))
        elif kind == self._verbs.unsubscribed and channel in self.wanted:
            # Redis ended a subscription we still want: its slot moved to another node.
            self.wanted.discard(channel)
            if self._on_dropped is not None:
                self._on_dropped(channel)

    def _fail_pending(self) -> None:
        for waiting in self._pending.values():
            for confirmed in waiting:
                if not confirmed.done():
                    confirmed.set_exception(BrokerUnavailable("connection to Redis lost"))
        self._pending.clear()
