"""A widget PATCH on PostgreSQL with the board row locked only inside PostgreSQL.

The locked path (`widgets.update_widget`) holds the board row across three round trips
and this worker's event loop between them: on one busy board every other write waits
for that loop (bench/NOTES.md, write path). Here the checks and validation run on an
unlocked read, then ONE autocommitted statement locks the board, updates the widget only
if what validation used is unchanged, takes seq + 1, inserts the event and marks the
request's idempotency key committed: all of it or nothing. The board lock is taken
before the seq is read and held until that statement commits, so events still commit in
seq order, gapless. Zero rows means the widget (or board) changed since the read: read
again and retry; after `TRIES` the caller falls back to the locked path.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields, replace
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson
import structlog
from sqlalchemy.exc import DBAPIError

from switchboard.errors import AppError, NotFound
from switchboard.resources import widget_data
from switchboard.store.boards import check_version
from switchboard.store.db import Database
from switchboard.store.events import TRIM_EVERY, Head, trim
from switchboard.store.models import Event, utcnow
from switchboard.store.widgets import WidgetRow, missing, patch_fields

log = structlog.get_logger(__name__)

TRIES = 3
"""Reads and conditional writes before the locked path takes over (a widget whose title
or config another writer keeps changing could otherwise starve this one)."""

RECENT_MAX = 10_000
"""Widgets a worker remembers as it last read or wrote them (`Recent`)."""

RECENT_ROW_MAX = 512
"""Bytes of config (as JSON) and title beyond which a widget is not remembered: with its
value left out, a worker's memory of widgets stays under a few MiB whatever is stored."""

DROPPED = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
)
"""What a statement on a connection PostgreSQL closed raises (a restart, a terminated
backend; `InternalClientError` when the closing notice arrived but the connection is not
yet marked closed): on the read nothing was written, so the connection is dropped and
the read made again on a fresh one."""

NOT_SENT = (asyncpg.InterfaceError, asyncpg.InternalClientError)
"""Of those, what asyncpg raises before it sends anything (the connection already closed,
or its protocol not ready): a statement that failed so was never run."""

# Both statements go straight to asyncpg (`Database.direct`), prepared once per connection.
# The widget's columns in `WidgetRow`'s order.
_READ = f"""
SELECT b.id, {", ".join(f"w.{f.name}" for f in fields(WidgetRow))}
FROM boards b LEFT JOIN widgets w ON w.board_id = b.id AND w.key = $2
WHERE b.slug = $1 AND b.deleted_at IS NULL
"""

# The `EXISTS` reads order the steps: the board lock (b) before the widget (w), the widget
# before the seq (s). Under READ COMMITTED a row another write changed meanwhile is
# re-checked at its newest version, so `version + 1` and `seq + 1` are never stale. JSON
# goes in as text, so that a JSON null stays a `jsonb` null, not SQL NULL. Parameters:
# $1 board, $2 widget, $3 kind, $4 title, $5 config, $6 value, $7 now, $8 old config,
# $9 old title, $10 old version (NULL: not checked), $11 the event's data, $12 the
# Idempotency-Key record (NULL: none).
_WRITE = """
WITH b AS (
    SELECT id FROM boards WHERE id = $1 AND deleted_at IS NULL FOR UPDATE
), w AS (
    UPDATE widgets
    SET title = $4, config = $5::text::jsonb, value = $6::text::jsonb,
        version = version + 1, updated_at = $7
    WHERE id = $2 AND kind = $3 AND EXISTS (SELECT FROM b)
        AND ($8::text::jsonb IS NULL OR config = $8::text::jsonb)
        AND ($9::text IS NULL OR title = $9::text)
        AND ($10::integer IS NULL OR version = $10::integer)
    RETURNING version
), s AS (
    UPDATE boards SET seq = seq + 1 WHERE id = $1 AND EXISTS (SELECT FROM w)
    RETURNING seq
), e AS (
    INSERT INTO events (board_id, seq, name, data, at)
    SELECT $1, s.seq, 'widget.updated',
        $11::text::jsonb || jsonb_build_object('version', w.version), $7
    FROM s, w
), k AS (
    UPDATE idempotency_keys SET committed = true
    WHERE key = $12::text AND EXISTS (SELECT FROM s)
)
SELECT s.seq, w.version FROM s, w
"""


class Recent:
    """Each widget as this worker last read or wrote it, with its board's id: a PATCH
    without `If-Match` goes straight to the conditional statement on it, one round trip
    instead of two. That statement re-checks, under the board lock, everything the PATCH
    was derived from (see `_write`), so a remembered row that has gone stale (another
    worker wrote the widget's config, the board was deleted) changes nothing: zero rows,
    and the PATCH reads afresh. Nothing is answered from it but a committed write: a
    refusal (412, 422, 404) only ever comes from a fresh read. Only a PATCH that sets the
    value uses it, so no value is kept (a series' points could be large); a widget with a
    config or title over `RECENT_ROW_MAX` bytes is not kept either. Bounded in count: the
    oldest entry goes first."""

    def __init__(self, limit: int = RECENT_MAX) -> None:
        self.limit = limit
        self.rows: dict[tuple[str, str], tuple[int, WidgetRow]] = {}

    def get(self, slug: str, key: str) -> tuple[int, WidgetRow] | None:
        return self.rows.get((slug, key))

    def put(self, slug: str, key: str, board: int, widget: WidgetRow) -> None:
        self.rows.pop((slug, key), None)
        if len(orjson.dumps(widget.config)) + len(widget.title) > RECENT_ROW_MAX:
            return
        self.rows[(slug, key)] = (board, replace(widget, value=None))
        if len(self.rows) > self.limit:
            del self.rows[next(iter(self.rows))]

    def drop(self, slug: str, key: str) -> None:
        self.rows.pop((slug, key), None)


@dataclass(frozen=True, slots=True)
class Patched:
    """A committed PATCH: the widget as it now is, its data as REST shows it (the
    response body and the event's data, built once), and the event to publish."""

    widget: WidgetRow
    data: dict[str, Any]
    event: tuple[str, Event]


async def patch_widget(
    db: Database,
    recent: Recent,
    slug: str,
    key: str,
    changes: dict[str, Any],
    *,
    if_match: int | None,
    idempotency_key: str | None,
) -> Patched | None:
    """`widgets.update_widget`'s PATCH, committed; `None` if it did not get through in
    `TRIES` (nothing was written: run the locked path)."""
    known = recent.get(slug, key) if if_match is None and "value" in changes else None
    if known is not None:
        done = await _on_recent(db, slug, known, changes, idempotency_key)
        if done is not None:
            recent.put(slug, key, done.event[1].board_id, done.widget)
            return done
        recent.drop(slug, key)
    for _ in range(TRIES):
        async with db.direct() as conn:
            try:
                board, widget = await _read(conn, slug, key)
            except DROPPED:
                _discard(conn)
                continue
            check_version(widget.version, if_match, f"widget {key!r}")
            fields = patch_fields(widget, changes)
            # A kept value depends on the version read, and so does `If-Match`.
            version = widget.version if if_match is not None or "value" not in changes else None
            try:
                done = await _write(
                    conn, slug, board, widget, changes, fields, version, idempotency_key
                )
            except DROPPED:
                _discard(conn)
                raise  # whether it committed is unknown: 503, never retried here
        if done is not None:
            recent.put(slug, key, board, done.widget)
            return done
    return None


async def _on_recent(
    db: Database,
    slug: str,
    known: tuple[int, WidgetRow],
    changes: dict[str, Any],
    idempotency_key: str | None,
) -> Patched | None:
    """The PATCH on the widget as this worker last saw it; `None` (nothing written) if
    that is stale, or the PATCH would be refused on it: a fresh read decides."""
    board, widget = known
    try:
        fields = patch_fields(widget, changes)
    except AppError:
        return None
    async with db.direct() as conn:
        try:
            return await _write(conn, slug, board, widget, changes, fields, None, idempotency_key)
        except NOT_SENT:
            _discard(conn)
            return None
        except DROPPED:
            _discard(conn)
            raise


async def trim_if_due(db: Database, done: Patched) -> None:
    """Retention, every `TRIM_EVERY` seqs, once the write has committed and been
    published (a trim is a DELETE of its own: run before the PUBLISH, it delayed every
    hundredth event by tens of milliseconds, bench/NOTES.md). Its failure must not answer
    a committed write with 503 (retried, it would be written twice). Nothing is lost by
    skipping it: the next trim, `TRIM_EVERY` seqs on, cuts the same prefix and more."""
    slug, event = done.event
    if event.seq % TRIM_EVERY:
        return
    head = Head(event.board_id, slug, event.seq)
    try:
        async with db.transaction() as tx:
            await trim(tx, head)
    except (DBAPIError, OSError) as exc:
        log.warning("trim_failed", board=head.slug, seq=head.seq, error=repr(exc))


async def _read(conn: asyncpg.Connection, slug: str, key: str) -> tuple[int, WidgetRow]:
    row = await conn.fetchrow(_READ, slug, key)
    if row is None:
        raise NotFound(f"board {slug!r} not found")
    if row["key"] is None:
        raise missing(slug, key)
    return row[0], WidgetRow(*row[1:])


async def _write(
    conn: asyncpg.Connection,
    slug: str,
    board: int,
    widget: WidgetRow,
    changes: dict[str, Any],
    fields: dict[str, Any],
    version: int | None,
    idempotency_key: str | None,
) -> Patched | None:
    """The one statement; `None` if what the read saw has changed (nothing written). What
    the new state was derived from is required unchanged: the kind always (validation),
    the config and title unless the PATCH sets them, and `version` unless it is `None`."""
    now = utcnow()
    new = WidgetRow(
        widget.id, widget.key, widget.kind, fields["title"], fields["config"], fields["value"],
        widget.version + 1, widget.created_at, now,
    )  # fmt: skip
    data = widget_data(new)
    row = await conn.fetchrow(
        _WRITE,
        board,
        widget.id,
        widget.kind,
        new.title,
        _json(new.config),
        _json(new.value),
        now,
        None if "config" in changes else _json(widget.config),
        None if "title" in changes else widget.title,
        version,
        _json(data),
        idempotency_key,
    )
    if row is None:
        return None
    new.version = data["version"] = row["version"]
    event = Event(board_id=board, seq=row["seq"], name="widget.updated", data=data, at=now)
    return Patched(new, data, (slug, event))


def _discard(conn: asyncpg.Connection) -> None:
    """Keep a connection whose protocol state is unknown out of the pool (one asyncpg saw
    close it has released already)."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
