"""The widget PATCH, the store's one entry point for it (`patch_widget`).

It chooses between two ways of writing the same change. The locked path
(`widgets.update_widget` in a `Database.transaction`, the way every other write goes)
holds the board row across three round trips and this worker's event loop between them:
on one busy board every other write waits for that loop (bench/NOTES.md, write path).
So on PostgreSQL the checks and validation run on an unlocked read, then ONE
autocommitted statement locks the board, updates the widget only if what validation used
is unchanged, takes seq + 1, inserts the event and marks the request's idempotency key
committed, with the response it stores for retries: all of it or nothing. That response
is built before the statement, so a PATCH with a key always names the version it read
(the new one is then known: that + 1). The board lock is taken before the seq is read and held
until that statement commits, so events still commit in seq order, gapless. Zero rows
means the widget (or board) changed since the read: read again and retry; after `TRIES`
the locked path takes over. SQLite has only the locked path.

The statement is composed here from the fragments of the modules that own each piece
(`events`: board lock, seq, event row; `widgets`: the conditional update; `idempotency`:
the mark), so both paths write the same rows the same way (`tests/store/test_patch_paths.py`
runs one sequence through each and compares every answer and row).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import orjson

from switchboard.errors import AppError, NotFound, OutcomeUnknown
from switchboard.resources import widget_data
from switchboard.store import events, idempotency, widgets
from switchboard.store.boards import check_version
from switchboard.store.db import Database
from switchboard.store.events import Head
from switchboard.store.idempotency import NO_KEY, Answer, Pending
from switchboard.store.models import Event, utcnow
from switchboard.store.widgets import WidgetRow, missing, patch_fields

Respond = Callable[[dict[str, Any]], Answer]
"""The PATCH's response, from the widget as REST shows it (`api.widget_patch`)."""

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

# The statement's parameters, by name; each fragment gets the ones it uses.
_PARAMS = (
    "board", "widget", "kind", "title", "config", "value", "now",
    "old_config", "old_title", "old_version", "data",
    "idempotency_key", "status", "headers", "body",
)  # fmt: skip
_P = {name: f"${i}" for i, name in enumerate(_PARAMS, 1)}

# The `EXISTS` reads order the steps: the board lock (b) before the widget (w), the widget
# before the seq (s). Under READ COMMITTED a row another write changed meanwhile is
# re-checked at its newest version, so `version + 1` and `seq + 1` are never stale. The
# event's data is the widget as validated, with the version the update returned. Built
# once: one text, so asyncpg prepares it once per connection.
_WRITE = (
    "WITH "
    + ",\n".join(
        [
            events.lock_board_sql("b", _P["board"]),
            widgets.update_if_unchanged_sql(
                "w",
                after="b",
                widget=_P["widget"],
                kind=_P["kind"],
                title=_P["title"],
                config=_P["config"],
                value=_P["value"],
                now=_P["now"],
                old_config=_P["old_config"],
                old_title=_P["old_title"],
                old_version=_P["old_version"],
            ),
            events.next_seq_sql("s", _P["board"], after="w"),
            events.insert_event_sql(
                "e",
                source="s, w",
                board=_P["board"],
                seq="s.seq",
                event=f"'{widgets.UPDATED}'",
                data=f"{_P['data']}::text::jsonb || jsonb_build_object('version', w.version)",
                at=_P["now"],
            ),
            idempotency.mark_committed_sql(
                "k",
                key=_P["idempotency_key"],
                status=_P["status"],
                headers=_P["headers"],
                body=_P["body"],
                after="s",
            ),
        ]
    )
    + "\nSELECT s.seq, w.version FROM s, w"
)


class Via(Enum):
    """Which way `patch_widget` writes: its own choice, or one forced (tests compare them)."""

    CHOOSE = "choose"
    """The single statement on PostgreSQL, the locked path after `TRIES` lost races."""
    STATEMENT = "statement"
    """The single statement only, retried until it gets through (PostgreSQL)."""
    LOCKED = "locked"
    """The locked path only (SQLite always)."""


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
    response body and the event's data, built once), the events to publish (with their
    board's slug), the retention trim due once they are published, if any (the
    locked path trims inside its transaction, as every write through `events.record`),
    and the response (`respond`'s), which a key's record stored with the write."""

    widget: WidgetRow
    data: dict[str, Any]
    events: list[tuple[str, Event]]
    trim: Head | None = None
    answer: Answer | None = None


async def patch_widget(
    db: Database,
    recent: Recent,
    slug: str,
    key: str,
    changes: dict[str, Any],
    *,
    if_match: int | None,
    idempotency: Pending | None,
    respond: Respond | None = None,
    via: Via = Via.CHOOSE,
) -> Patched:
    """PATCH widget `key` of board `slug` with `changes` (title, config, value), committed,
    the request's `idempotency` key (if any) marked committed with it, with the response
    `respond` builds. Refusals raise as `widgets.update_widget` raises them (404, 412,
    422); nothing is published here."""
    ask = _Ask(slug, key, changes, if_match, idempotency, respond)
    if via is not Via.LOCKED and not db.is_sqlite:
        done = await _by_statement(db, recent, ask, None if via is Via.STATEMENT else TRIES)
        if done is not None:
            return done
    return await _locked(db, ask)


@dataclass(frozen=True, slots=True)
class _Ask:
    """One PATCH as `patch_widget` was asked for it."""

    slug: str
    key: str
    changes: dict[str, Any]
    if_match: int | None
    idempotency: Pending | None
    respond: Respond | None

    def answer(self, data: dict[str, Any]) -> Answer | None:
        return None if self.respond is None else self.respond(data)


async def _locked(db: Database, ask: _Ask) -> Patched:
    async with db.transaction() as tx:
        widget = await widgets.update_widget(
            tx, ask.slug, ask.key, ask.changes, if_match=ask.if_match
        )
        data = tx.events[-1][1].data
        answer = ask.answer(data)
        if ask.idempotency is not None:
            idempotency.mark_committed(tx, ask.idempotency, answer)
    return Patched(widget, data, tx.events, answer=answer)


async def _by_statement(
    db: Database, recent: Recent, ask: _Ask, tries: int | None
) -> Patched | None:
    """The PATCH as one statement; `None` if it did not get through in `tries` (nothing
    was written: run the locked path); `tries` None: until it gets through."""
    slug, key, changes, if_match = ask.slug, ask.key, ask.changes, ask.if_match
    known = recent.get(slug, key) if if_match is None and "value" in changes else None
    if known is not None:
        done = await _on_recent(db, slug, known, ask)
        if done is not None:
            recent.put(slug, key, known[0], done.widget)
            return done
        recent.drop(slug, key)
    attempt = 0
    while tries is None or attempt < tries:
        attempt += 1
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
                done = await _write(conn, slug, board, widget, changes, fields, version, ask)
            except NOT_SENT:
                _discard(conn)
                raise  # never sent: nothing was written
            except DROPPED as exc:
                _discard(conn)
                raise _unknown(exc) from exc  # never retried here: a retry with the key is
        if done is not None:
            recent.put(slug, key, board, done.widget)
            return done
    return None


async def _on_recent(
    db: Database, slug: str, known: tuple[int, WidgetRow], ask: _Ask
) -> Patched | None:
    """The PATCH on the widget as this worker last saw it; `None` (nothing written) if
    that is stale, or the PATCH would be refused on it: a fresh read decides."""
    board, widget = known
    try:
        fields = patch_fields(widget, ask.changes)
    except AppError:
        return None
    async with db.direct() as conn:
        try:
            return await _write(conn, slug, board, widget, ask.changes, fields, None, ask)
        except NOT_SENT:
            _discard(conn)
            return None
        except DROPPED as exc:
            _discard(conn)
            raise _unknown(exc) from exc


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
    ask: _Ask | None,
) -> Patched | None:
    """The one statement; `None` if what the read saw has changed (nothing written). What
    the new state was derived from is required unchanged: the kind always (validation),
    the config and title unless the PATCH sets them, and `version` unless it is `None`
    (with a key, never: its response, stored by the statement, names the new version)."""
    pending = None if ask is None else ask.idempotency
    if pending is not None:
        version = widget.version
    now = utcnow()
    new = replace(widget, **fields, version=widget.version + 1, updated_at=now)
    data = widget_data(new)
    answer, key = None, NO_KEY
    if pending is not None and ask is not None and (answer := ask.answer(data)) is not None:
        key = pending.sql_params(answer)
    elif pending is not None:
        key = (pending.key, None, None, None)
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
        *key,
    )
    if row is None:
        return None
    new.version = data["version"] = row["version"]
    seq = row["seq"]
    event = Event(board_id=board, seq=seq, name=widgets.UPDATED, data=data, at=now)
    trim = Head(board, slug, seq) if events.trim_due(seq) else None
    if answer is None and ask is not None:
        answer = ask.answer(data)
    return Patched(new, data, [(slug, event)], trim, answer)


def _unknown(exc: Exception) -> OutcomeUnknown:
    """The statement was sent and its connection died: it may have committed."""
    return OutcomeUnknown(f"the widget PATCH was sent; its answer was lost: {exc!r}")


def _discard(conn: asyncpg.Connection) -> None:
    """Keep a connection whose protocol state is unknown out of the pool (one asyncpg saw
    close it has released already)."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
