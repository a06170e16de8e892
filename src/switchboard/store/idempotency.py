"""Idempotency keys: at most one write per key, and its response for every retry.

A request claims its key in its own short transaction before it runs (two
concurrent requests with one key: one claims, the other is told it is in
progress); the write marks the claim `committed` in the write's own transaction
and stores the response with it (`mark_committed`), so whatever happens to the
answer on its way back, a retry finds the write's real result. A request that
wrote nothing (refused, rate-limited, invalid, failed) releases its claim
instead, so an honest retry runs. A claim that never committed and was never
released (the worker died, or the release itself could not reach the database)
can be taken over once it is stale.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Any

import orjson
from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from switchboard.store.db import Database, Tx
from switchboard.store.models import IdempotencyKey, utcnow

STALE_CLAIM = timedelta(seconds=60)
PURGE_EVERY = 100


@dataclass(frozen=True, slots=True)
class Answer:
    """A response as stored and replayed: status, the headers kept, the body's bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class Pending:
    """The request's key as its write sees it: the record (`key`), how a body is sealed
    for storage (encrypted under the caller's credential), the response the route
    registered (`answer`), and whether a write committed with it (`recorded`)."""

    key: str
    seal: Callable[[bytes], bytes]
    answer: Answer | None = None
    recorded: bool = False

    def sealed(self, answer: Answer) -> tuple[int, dict[str, str], bytes]:
        """What the record stores of `answer` (the body encrypted)."""
        return answer.status, answer.headers, self.seal(answer.body)

    def sql_params(self, answer: Answer) -> tuple[str, int, str, bytes]:
        """The parameters of `mark_committed_sql`: key, status, headers (JSON), body."""
        status, headers, body = self.sealed(answer)
        return self.key, status, orjson.dumps(headers).decode(), body


NO_KEY: tuple[Any, ...] = (None, None, None, None)
"""`mark_committed_sql`'s parameters when the request has no key: nothing is marked."""

CURRENT_KEY: ContextVar[Pending | None] = ContextVar("idempotency_key", default=None)
"""The key of the request being served, set by the middleware, read by `api.writes`."""


class Outcome(Enum):
    CLAIMED = "claimed"
    """Run the request; then `finish` the key."""
    REPLAY = "replay"
    """Answer with the stored response."""
    MISMATCH = "mismatch"
    """The key was used for a different request."""
    IN_PROGRESS = "in_progress"
    """Another request with this key is running (or ended and could not release it: until
    the claim is stale)."""


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

    async def finish(self, pending: Pending, answer: Answer | None) -> None:
        """After a request whose write was not seen to commit: release the key if nothing
        was committed under it (a retry runs the request); a committed record keeps the
        response stored with its write. `answer` (never a 5xx: None) is stored only on a
        committed record that has none, which no route leaves (`mark_committed`)."""
        async with self.db.transaction() as tx:
            row = await tx.session.get(IdempotencyKey, pending.key, with_for_update=True)
            if row is None:
                return
            if not row.committed:
                await tx.session.delete(row)
            elif row.status is None and answer is not None:
                row.status, row.headers, row.body = pending.sealed(answer)


async def forget_board(tx: Tx, slug: str) -> None:
    """The board is being deleted: its records go with it (the running request's own key,
    if any, stays, so that its retry is answered)."""
    query = delete(IdempotencyKey).where(IdempotencyKey.board == slug)
    if (current := CURRENT_KEY.get()) is not None:
        query = query.where(IdempotencyKey.key != current.key)
    await tx.session.execute(query)


def mark_committed(tx: Tx, pending: Pending, answer: Answer | None) -> None:
    """Inside the write's transaction, at its end: this key's write is happening now,
    and `answer` is its response (queued: sent with the write's last statement)."""
    values: dict[str, Any] = {"committed": True}
    if answer is not None:
        status, headers, body = pending.sealed(answer)
        values.update(status=status, headers=headers, body=body)
    tx.queue(update(IdempotencyKey).where(IdempotencyKey.key == pending.key).values(**values))


def mark_committed_sql(
    name: str, *, key: str, status: str, headers: str, body: str, after: str
) -> str:
    """`mark_committed` as CTE `name` of a single-statement write (`store.patch`): key
    `key` (a text expression; NULL marks nothing) is marked, with its response (`status`,
    `headers` as JSON text, the sealed `body`), if CTE `after` has a row."""
    return (
        f"{name} AS (UPDATE idempotency_keys SET committed = true, status = {status}::int,"
        f" headers = coalesce({headers}::text::jsonb, headers), body = {body}::bytea"
        f" WHERE key = {key}::text AND EXISTS (SELECT FROM {after}))"
    )
