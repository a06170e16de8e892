"""The typed state that `lifespan` builds and every request and connection reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from switchboard.auth.authenticator import Authenticator
from switchboard.auth.limits import RateLimiter
from switchboard.auth.revocation import Revocations
from switchboard.broker import Broker
from switchboard.config import Settings
from switchboard.metrics import METRICS
from switchboard.realtime.node import Node
from switchboard.realtime.publisher import Publisher
from switchboard.store.db import Database, Tx
from switchboard.store.idempotency import CURRENT_KEY, mark_committed


@dataclass(frozen=True, slots=True)
class AppState:
    """What the REST routes need; the streaming transports read only `realtime`."""

    settings: Settings
    db: Database
    broker: Broker
    publisher: Publisher
    auth: Authenticator
    limiter: RateLimiter
    revocations: Revocations
    realtime: Node

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """One write: commit, then publish its events (never before, never on rollback)."""
        with METRICS.write_db_seconds.time():
            async with self.db.transaction() as tx:
                yield tx
                if (key := CURRENT_KEY.get()) is not None:
                    await mark_committed(tx, key)
        await self.publisher.publish(tx.events)
