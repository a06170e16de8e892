"""The typed state that `lifespan` builds and every request and connection reads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from switchboard.auth.authenticator import Authenticator
from switchboard.auth.limits import RateLimiter
from switchboard.auth.revocation import Revocations
from switchboard.broker import Broker
from switchboard.config import Settings
from switchboard.metrics import METRICS
from switchboard.realtime.node import Node
from switchboard.realtime.publisher import Publisher
from switchboard.store import patch, widgets
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
    recent: patch.Recent = field(default_factory=patch.Recent)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Tx]:
        """One write: commit, then publish its events (never before, never on rollback)."""
        with METRICS.write_db_seconds.time():
            async with self.db.transaction() as tx:
                yield tx
                if (key := CURRENT_KEY.get()) is not None:
                    await mark_committed(tx, key)
        await self.publisher.publish(tx.events)

    async def patch_widget(
        self, slug: str, key: str, changes: dict[str, Any], *, if_match: int | None
    ) -> dict[str, Any]:
        """A widget PATCH, committed then published; the widget as REST shows it. On
        PostgreSQL one statement holds the board lock (`store.patch`); on SQLite, or when
        that kept losing to other writers, the locked path (`widgets.update_widget`)."""
        if not self.db.is_sqlite:
            with METRICS.write_db_seconds.time():
                done = await patch.patch_widget(
                    self.db,
                    self.recent,
                    slug,
                    key,
                    changes,
                    if_match=if_match,
                    idempotency_key=CURRENT_KEY.get(),
                )
            if done is not None:
                await self.publisher.publish([done.event])
                await patch.trim_if_due(self.db, done)
                return done.data
        async with self.write() as tx:
            await widgets.update_widget(tx, slug, key, changes, if_match=if_match)
        return tx.events[-1][1].data  # its `widget.updated` event holds the widget
