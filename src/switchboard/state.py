"""The typed state that `lifespan` builds and every request and connection reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from switchboard.auth.authenticator import Authenticator
from switchboard.auth.limits import ConnectionCounter, RateLimiter
from switchboard.auth.revocation import Revocations
from switchboard.broker import Broker
from switchboard.config import Settings
from switchboard.metrics import METRICS
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

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """One write: commit, then publish its events (never before, never on rollback)."""
        with METRICS.write_db_seconds.time():
            async with self.db.transaction() as tx:
                yield tx
                if (key := CURRENT_KEY.get()) is not None:
                    await mark_committed(tx, key)
        await self.publisher.publish(tx.events)
