"""Idempotency keys: at most one write per key, and the first response for every retry.

A request claims its key in its own short transaction before it runs (two
concurrent requests with one key: one claims, the other is told it is in
progress); the write marks the claim `committed` in the write's transaction;
the response is stored afterwards. A request that wrote nothing (refused,
rate-limited, invalid, failed) releases its claim instead, so an honest retry
runs. A claim that never committed and was never released (the worker died)
can be taken over once it is stale.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from switchboard.store.db import Database, Tx
from switchboard.store.models import IdempotencyKey, utcnow

CURRENT_KEY: ContextVar[str | None] = ContextVar("idempotency_key", default=None)
"""The key of the request being served, set by the middleware, read by `api.writes`."""

STALE_CLAIM = timedelta(seconds=60)
PURGE_EVERY = 100


class Outcome(Enum):
    CLAIMED = "claimed"
    """Run the request; then `finish` the key."""
    REPLAY = "replay"
    """Answer with the stored response."""
    MISMATCH = "mismatch"
    """The key was used for a different request."""
    IN_PROGRESS = "in_progress"
    """Another request with this key is running (or its response was lost after its write)."""


@dataclass(frozen=True, slots=True)
class Claim:
    outcome: Outcome
    status: int = 0
    headers: dict[str, str] | None = None
    body: bytes = b""


class IdempotencyStore:
    def __init__(self, db: Database, ttl: timedelta) -> None:
        self.db = db
        self.ttl = ttl
        self._claims = 0

    async def claim(self, key: str, fingerprint: str, board: str | None) -> Claim:
        try:
            return await self._claim(key, fingerprint, board)
        except IntegrityError:  # a concurrent request inserted the key first
            return await self._claim(key, fingerprint, board)

    async def _claim(self, key: str, fingerprint: str, board: str | None) -> Claim:
        now = utcnow()
        async with self.db.transaction() as tx:
            self._claims += 1
            if self._claims % PURGE_EVERY == 0:
                await tx.session.execute(
                    delete(IdempotencyKey).where(IdempotencyKey.expires_at < now)
                )
            row = await tx.session.get(IdempotencyKey, key, with_for_update=True)
            if row is not None and row.expires_at < now:
                await tx.session.delete(row)
                await tx.session.flush()
                row = None
            if row is None:
                tx.session.add(
                    IdempotencyKey(
                        key=key,
                        board=board,
                        fingerprint=fingerprint,
                        claimed_at=now,
                        expires_at=now + self.ttl,
                    )
                )
                return Claim(Outcome.CLAIMED)
            if row.fingerprint != fingerprint:
                return Claim(Outcome.MISMATCH)
            if row.status is not None:
                return Claim(Outcome.REPLAY, row.status, row.headers, row.body or b"")
            if not row.committed and now - row.claimed_at > STALE_CLAIM:
                row.claimed_at = now
                return Claim(Outcome.CLAIMED)
            return Claim(Outcome.IN_PROGRESS)

    async def finish(self, key: str, *, status: int, headers: dict[str, str], body: bytes) -> None:
        """Store the response of a request whose write committed (whatever its status: a
        retry must not apply it twice); release the key of one that changed nothing."""
        async with self.db.transaction() as tx:
            row = await tx.session.get(IdempotencyKey, key, with_for_update=True)
            if row is None:
                return
            if not row.committed:
                await tx.session.delete(row)
                return
            row.status, row.headers, row.body = status, headers, body


async def forget_board(tx: Tx, slug: str) -> None:
    """The board is being deleted: its records go with it (the running request's own key,
    if any, stays, so that its retry is answered)."""
    query = delete(IdempotencyKey).where(IdempotencyKey.board == slug)
    if (current := CURRENT_KEY.get()) is not None:
        query = query.where(IdempotencyKey.key != current)
    await tx.session.execute(query)


async def mark_committed(tx: Tx, key: str) -> None:
    """Inside the write's transaction: this key's write is happening now."""
    await tx.session.execute(
        update(IdempotencyKey).where(IdempotencyKey.key == key).values(committed=True)
    )


def mark_committed_sql(name: str, key: str, after: str) -> str:
    """`mark_committed` as CTE `name` of a single-statement write (`store.patch`): key
    `key` (a text expression; NULL marks nothing) is marked if CTE `after` has a row."""
    return (
        f"{name} AS (UPDATE idempotency_keys SET committed = true"
        f" WHERE key = {key}::text AND EXISTS (SELECT FROM {after}))"
    )
