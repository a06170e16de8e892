"""A write as the REST routes make it: committed, then its events published.

Never before the commit (a subscriber must not see what a rollback undoes) and never on a
rollback. The request's `Idempotency-Key` (`CURRENT_KEY`, set by the middleware) is
marked committed in the write's own transaction, so a retry is never applied twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from switchboard.metrics import METRICS
from switchboard.state import AppState
from switchboard.store import patch
from switchboard.store.db import Tx
from switchboard.store.events import trim_committed
from switchboard.store.idempotency import CURRENT_KEY, mark_committed


@asynccontextmanager
async def write(state: AppState) -> AsyncIterator[Tx]:
    """One write: commit, then publish its events."""
    with METRICS.write_db_seconds.time():
        async with state.db.transaction() as tx:
            yield tx
            if (key := CURRENT_KEY.get()) is not None:
                await mark_committed(tx, key)
    await state.publisher.publish(tx.events)


async def patch_widget(
    state: AppState, slug: str, key: str, changes: dict[str, Any], *, if_match: int | None
) -> dict[str, Any]:
    """A widget PATCH (`store.patch` picks how it is written), committed then published,
    then the retention trim it made due; the widget as REST shows it."""
    with METRICS.write_db_seconds.time():
        done = await patch.patch_widget(
            state.db,
            state.recent,
            slug,
            key,
            changes,
            if_match=if_match,
            idempotency_key=CURRENT_KEY.get(),
        )
    await state.publisher.publish(done.events)
    if done.trim is not None:
        await trim_committed(state.db, done.trim)
    return done.data
