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

from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import BigInteger, Integer, String, and_, bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from switchboard.errors import NotFound
from switchboard.resources import widget_data
from switchboard.store.boards import check_version
from switchboard.store.db import Database
from switchboard.store.events import BOARDS, TRIM_EVERY, Head, trim
from switchboard.store.models import Event, UTCDateTime, utcnow
from switchboard.store.widgets import COLUMNS, WIDGETS, WidgetRow, missing, patch_fields

log = structlog.get_logger(__name__)

TRIES = 3
"""Reads and conditional writes before the locked path takes over (a widget whose title
or config another writer keeps changing could otherwise starve this one)."""

_READ = (
    select(BOARDS.c.id, *COLUMNS)
    .select_from(
        BOARDS.outerjoin(
            WIDGETS, and_(WIDGETS.c.board_id == BOARDS.c.id, WIDGETS.c.key == bindparam("key"))
        )
    )
    .where(BOARDS.c.slug == bindparam("slug"), BOARDS.c.deleted_at.is_(None))
)

# Built once: its cache key and compiled form are computed on the first write only. The
# `EXISTS` reads order the steps: the board lock (b) before the widget (w), the widget
# before the seq (s). Under READ COMMITTED a row another write changed meanwhile is
# re-checked at its newest version, so `version + 1` and `seq + 1` are never stale.
_WRITE = (
    text(
        """
WITH b AS (
    SELECT id FROM boards WHERE id = :board AND deleted_at IS NULL FOR UPDATE
), w AS (
    UPDATE widgets
    SET title = :title, config = :config, value = :value,
        version = version + 1, updated_at = :now
    WHERE id = :widget AND kind = :kind AND EXISTS (SELECT FROM b)
        AND (CAST(:old_config AS jsonb) IS NULL OR config = :old_config)
        AND (CAST(:old_title AS text) IS NULL OR title = :old_title)
        AND (CAST(:old_version AS integer) IS NULL OR version = :old_version)
    RETURNING version
), s AS (
    UPDATE boards SET seq = seq + 1 WHERE id = :board AND EXISTS (SELECT FROM w)
    RETURNING seq
), e AS (
    INSERT INTO events (board_id, seq, name, data, at)
    SELECT :board, s.seq, 'widget.updated',
        CAST(:data AS jsonb) || jsonb_build_object('version', w.version), :now
    FROM s, w
), k AS (
    UPDATE idempotency_keys SET committed = true
    WHERE key = :idempotency_key AND EXISTS (SELECT FROM s)
)
SELECT s.seq, w.version FROM s, w
"""
    )
    .bindparams(
        bindparam("config", type_=JSONB()),
        bindparam("value", type_=JSONB()),
        bindparam("old_config", type_=JSONB(none_as_null=True)),
        bindparam("old_title", type_=String()),
        bindparam("old_version", type_=Integer()),
        bindparam("data", type_=JSONB()),
        bindparam("now", type_=UTCDateTime()),
        bindparam("idempotency_key", type_=String()),
    )
    .columns(seq=BigInteger(), version=Integer())
)


@dataclass(frozen=True, slots=True)
class Patched:
    """A committed PATCH: the widget as it now is, its data as REST shows it (the
    response body and the event's data, built once), and the event to publish."""

    widget: WidgetRow
    data: dict[str, Any]
    event: tuple[str, Event]


async def patch_widget(
    db: Database,
    slug: str,
    key: str,
    changes: dict[str, Any],
    *,
    if_match: int | None,
    idempotency_key: str | None,
) -> Patched | None:
    """`widgets.update_widget`'s PATCH, committed; `None` if it did not get through in
    `TRIES` (nothing was written: run the locked path)."""
    for _ in range(TRIES):
        async with db.autocommit() as conn:
            try:
                board, widget = await _read(conn, slug, key)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                continue  # PostgreSQL dropped it (a restart): nothing written, the pool renewed
            check_version(widget.version, if_match, f"widget {key!r}")
            fields = patch_fields(widget, changes)
            # A kept value depends on the version read, and so does `If-Match`.
            version = widget.version if if_match is not None or "value" not in changes else None
            done = await _write(
                conn, slug, board, widget, changes, fields, version, idempotency_key
            )
        if done is not None:
            return done
    return None


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


async def _read(conn: AsyncConnection, slug: str, key: str) -> tuple[int, WidgetRow]:
    rows = (await conn.execute(_READ, {"slug": slug, "key": key})).all()
    if not rows:
        raise NotFound(f"board {slug!r} not found")
    if rows[0].key is None:
        raise missing(slug, key)
    return rows[0][0], WidgetRow(*rows[0][1:])


async def _write(
    conn: AsyncConnection,
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
    row = (
        await conn.execute(
            _WRITE,
            {
                "board": board,
                "widget": widget.id,
                "kind": widget.kind,
                "title": new.title,
                "config": new.config,
                "value": new.value,
                "now": now,
                "old_config": None if "config" in changes else widget.config,
                "old_title": None if "title" in changes else widget.title,
                "old_version": version,
                "data": data,
                "idempotency_key": idempotency_key,
            },
        )
    ).first()
    if row is None:
        return None
    new.version = data["version"] = row.version
    event = Event(board_id=board, seq=row.seq, name="widget.updated", data=data, at=now)
    return Patched(new, data, (slug, event))
