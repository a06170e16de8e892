"""The typed state that `lifespan` builds and every request and connection reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from switchboard.auth.authenticator import Authenticator
from switchboard.auth.limits import ConnectionCounter, RateLimiter, stream_identity
from switchboard.auth.principal import Principal
from switchboard.auth.revocation import Revocations
from switchboard.broker import Broker
from switchboard.config import Settings
from switchboard.metrics import METRICS
from switchboard.realtime.connection import Connection
from switchboard.realtime.drain import Drain
from switchboard.realtime.hub import Hub
from switchboard.realtime.presence import Presence
from switchboard.realtime.publisher import Publisher
from switchboard.store.db import Database, Tx
from switchboard.store.idempotency import CURRENT_KEY, mark_committed


@dataclass(frozen=True, slots=True)
class AppState:
    settings: Settings
    db: Database
    broker: Broker
    hub: Hub
    publisher: Publisher
    auth: Authenticator
    limiter: RateLimiter
    streams: ConnectionCounter
    revocations: Revocations
    presence: Presence
    drain: Drain

    def open_connection(
        self,
        principal: Principal,
        client_host: str | None,
        kind: type[Connection] = Connection,
    ) -> Connection | None:
        """A new streaming connection (WebSocket or SSE), or None when its credential already
        holds as many as it may. Pair with `release_connection`."""
        slot = stream_identity(principal, client_host)
        if not self.streams.acquire(slot):
            return None
        connection = kind(
            max_queue=self.settings.ws_queue_max_messages,
            max_bytes=self.settings.ws_queue_max_bytes,
            principal=principal,
            slot=slot,
        )
        self.drain.track(connection)
        METRICS.connections.inc()
        return connection

    def release_connection(self, connection: Connection) -> None:
        """Give back the slot `open_connection` took; releasing twice is harmless."""
        if not self.drain.untrack(connection):
            return
        self.streams.release(connection.slot)
        METRICS.connections.dec()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """One write: commit, then publish its events (never before, never on rollback)."""
        with METRICS.write_db_seconds.time():
            async with self.db.transaction() as tx:
                yield tx
                if (key := CURRENT_KEY.get()) is not None:
                    await mark_committed(tx, key)
        await self.publisher.publish(tx.events)
