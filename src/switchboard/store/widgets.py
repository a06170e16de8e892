"""Widget operations: every change validates the value for its kind and records one event.

Writes use SQLAlchemy Core, not ORM objects (this is the hot path: bench/NOTES.md). A write
locks its board and reads the widgets it changes in one statement (`_lock`), checks and
validates in Python, then queues its changes with the event (`Tx.queue`): on PostgreSQL,
two statements and the commit while the board row is locked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard import kinds
from switchboard.errors import AppError, NotFound, PreconditionFailed, ValidationFailed
from switchboard.resources import widget_data
from switchboard.store.boards import check_version
from switchboard.store.db import Tx
from switchboard.store.events import BOARDS, Head, find_board, record
from switchboard.store.models import Base, Widget, utcnow

WIDGETS = Base.metadata.tables["widgets"]


@dataclass(slots=True)
class WidgetRow:
    """A widget as stored, with the attributes `WidgetOut` reads (no ORM identity)."""

    id: int
    key: str
    kind: str
    title: str
    config: dict[str, Any]
    value: Any
    version: int
    created_at: datetime
    updated_at: datetime


COLUMNS = [WIDGETS.c[f.name] for f in fields(WidgetRow)]

UPDATED = "widget.updated"
"""The event of a widget PUT over an existing widget, and of a PATCH, on every path."""


def update_if_unchanged_sql(
    name: str,
    *,
    after: str,
    widget: str,
    kind: str,
    title: str,
    config: str,
    value: str,
    now: str,
    old_config: str,
    old_title: str,
    old_version: str,
) -> str:
    """`update_widget`'s change as CTE `name` (column `version`) of a single-statement
    write (`store.patch`), made only if CTE `after` (the board lock) has a row and the
    widget still is what the change was validated against: its `kind` always, its config
    and title unless these are NULL (the PATCH sets them), its version unless NULL. JSON
    goes in as text, so that a JSON null stays a `jsonb` null, not SQL NULL."""
    return f"""{name} AS (
    UPDATE widgets
    SET title = {title}, config = {config}::text::jsonb, value = {value}::text::jsonb,
        version = version + 1, updated_at = {now}
    WHERE id = {widget} AND kind = {kind} AND EXISTS (SELECT FROM {after})
        AND ({old_config}::text::jsonb IS NULL OR config = {old_config}::text::jsonb)
        AND ({old_title}::text IS NULL OR title = {old_title}::text)
        AND ({old_version}::integer IS NULL OR version = {old_version}::integer)
    RETURNING version
)"""


async def _find(session: AsyncSession, board_id: int, key: str) -> Widget | None:
    return await session.scalar(
        select(Widget).where(Widget.board_id == board_id, Widget.key == key)
    )


def missing(slug: str, key: str) -> NotFound:
    return NotFound(f"widget {key!r} not found on board {slug!r}")


async def get_widget(session: AsyncSession, slug: str, key: str) -> Widget:
    widget = await _find(session, (await find_board(session, slug)).id, key)
    if widget is None:
        raise missing(slug, key)
    return widget


_SEEN = BOARDS.alias("seen")


async def _lock(tx: Tx, slug: str, keys: list[str]) -> tuple[Head, dict[str, WidgetRow]]:
    """The live board, locked until the transaction ends (`FOR UPDATE OF boards`; SQLite
    serialises writes in-process instead), and those of `keys` that exist on it: one
    round trip unless another write committed while this one waited for the lock (then
    two). `NotFound` if there is no such board.

    After waiting for the lock, READ COMMITTED hands back the board row as that write
    left it, but the joined widgets as the statement's snapshot saw them, before it: a
    write built on those would undo the other (lost series points, versions counted
    twice). The board's seq as the snapshot saw it (`seen`) tells: every write moves it."""
    await tx.send_queued()  # an earlier write of this transaction, read back as it left it
    seen = select(_SEEN.c.seq).where(_SEEN.c.id == BOARDS.c.id).scalar_subquery()
    query = (
        select(BOARDS.c.id, BOARDS.c.seq, seen, *COLUMNS)
        .select_from(
            BOARDS.outerjoin(
                WIDGETS, and_(WIDGETS.c.board_id == BOARDS.c.id, WIDGETS.c.key.in_(keys))
            )
        )
        .where(BOARDS.c.slug == slug, BOARDS.c.deleted_at.is_(None))
        .with_for_update(of=BOARDS)
    )
    rows = (await tx.session.execute(query)).all()
    if not rows:
        raise NotFound(f"board {slug!r} not found")
    head = Head(rows[0][0], slug, rows[0][1])
    if rows[0][2] != head.seq:  # a new statement, a new snapshot, and the lock is ours
        query = select(*COLUMNS).where(WIDGETS.c.board_id == head.id, WIDGETS.c.key.in_(keys))
        return head, {row.key: WidgetRow(*row) for row in await tx.session.execute(query)}
    return head, {row.key: WidgetRow(*row[3:]) for row in rows if row.key is not None}


async def _locked(tx: Tx, slug: str, key: str) -> tuple[Head, WidgetRow]:
    head, found = await _lock(tx, slug, [key])
    if key not in found:
        raise missing(slug, key)
    return head, found[key]


def _save(tx: Tx, widget: WidgetRow) -> None:
    """Queue the widget's stored fields as they are now."""
    tx.queue(
        update(WIDGETS)
        .where(WIDGETS.c.id == widget.id)
        .values(
            kind=widget.kind,
            title=widget.title,
            config=widget.config,
            value=widget.value,
            version=widget.version,
            updated_at=widget.updated_at,
        )
    )


async def put_widget(
    tx: Tx,
    slug: str,
    key: str,
    *,
    kind: str,
    title: str,
    config: dict[str, Any],
    value: Any,
    if_match: int | None,
) -> tuple[WidgetRow, bool]:
    """Create or wholly replace a widget; returns it and whether it was created."""
    config = kinds.validate_config(kind, config)
    value = kinds.validate_value(kind, value, config)
    board, found = await _lock(tx, slug, [key])
    widget = found.get(key)
    now = utcnow()
    if widget is None:
        check_version(0, if_match, f"widget {key!r}")
        widget = WidgetRow(0, key, kind, title, config, value, 1, now, now)
        row = {f.name: getattr(widget, f.name) for f in fields(WidgetRow) if f.name != "id"}
        tx.queue(insert(WIDGETS).values(board_id=board.id, **row))
        await record(tx, board, "widget.created", widget_data(widget))
        return widget, True
    check_version(widget.version, if_match, f"widget {key!r}")
    widget.kind, widget.title, widget.config, widget.value = kind, title, config, value
    await _touch(tx, board, widget)
    return widget, False


async def update_widget(
    tx: Tx, slug: str, key: str, changes: dict[str, Any], *, if_match: int | None
) -> WidgetRow:
    """Partial update: fields not given keep their value; the value is re-validated."""
    board, widget = await _locked(tx, slug, key)
    check_version(widget.version, if_match, f"widget {key!r}")
    _apply(widget, patch_fields(widget, changes))
    await _touch(tx, board, widget)
    return widget


def patch_fields(widget: WidgetRow, changes: dict[str, Any]) -> dict[str, Any]:
    """The widget's title, config and value after `changes`, validated; `widget` is untouched."""
    config = kinds.validate_config(widget.kind, changes.get("config", widget.config))
    # Re-validating the kept value too applies a changed config (a series trims to max_points).
    value = kinds.validate_value(widget.kind, changes.get("value", widget.value), config)
    return {"title": changes.get("title", widget.title), "config": config, "value": value}


def _apply(widget: WidgetRow, fields: dict[str, Any]) -> None:
    widget.title, widget.config, widget.value = fields["title"], fields["config"], fields["value"]


def _bump(widget: WidgetRow) -> None:
    widget.version += 1
    widget.updated_at = utcnow()


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a batch: the fields to change and, optionally, the version last seen."""

    fields: dict[str, Any]
    version: int | None = None


def _failure(exc: type[AppError], message: str, failures: dict[str, str]) -> AppError:
    details = [{"loc": ["body", "widgets", key], "msg": msg} for key, msg in failures.items()]
    return exc(message, details=details)


async def update_widgets(tx: Tx, slug: str, batch: Mapping[str, Change]) -> list[WidgetRow]:
    """Patch several widgets of one board as one write: one version bump each, ONE
    `widgets.updated` event (one seq) listing them all, in the batch's order.

    All or nothing, and every failing key is reported at once: `ValidationFailed` (422)
    if any entry names no widget or is invalid for its widget (as `update_widget` judges
    it); otherwise `PreconditionFailed` (412) if any entry's `version` is stale. Each
    error's `details` holds one `{"loc": ["body", "widgets", key], "msg": …}` per key."""
    board, found = await _lock(tx, slug, list(batch))
    patched: dict[str, dict[str, Any]] = {}
    invalid: dict[str, str] = {}
    stale: dict[str, str] = {}
    for key, change in batch.items():
        widget = found.get(key)
        if widget is None:
            invalid[key] = missing(slug, key).message
            continue
        try:
            patched[key] = patch_fields(widget, change.fields)
        except ValidationFailed as exc:
            invalid[key] = exc.message
        try:
            check_version(widget.version, change.version, f"widget {key!r}")
        except PreconditionFailed as exc:
            stale[key] = exc.message
    if invalid:
        raise _failure(
            ValidationFailed,
            f"{len(invalid)} widget(s) of the batch were refused; nothing was changed",
            invalid,
        )
    if stale:
        raise _failure(
            PreconditionFailed,
            f"{len(stale)} widget(s) of the batch are at another version; nothing was changed",
            stale,
        )
    changed = [found[key] for key in patched]
    for widget in changed:
        _apply(widget, patched[widget.key])
        _bump(widget)
        _save(tx, widget)
    data = {"widgets": [widget_data(w) for w in changed]}
    await record(tx, board, "widgets.updated", data)
    return changed


async def append_points(tx: Tx, slug: str, key: str, points: list[Any]) -> WidgetRow:
    board, widget = await _locked(tx, slug, key)
    if widget.kind not in kinds.POINT_KINDS:
        raise ValidationFailed(f"widget {key!r} is a {widget.kind}: points go to a series or trend")
    before = widget.value if isinstance(widget.value, list) else []
    widget.value = kinds.append_points(before, points, widget.config)
    appended = widget.value[-len(points) :]
    _bump(widget)
    _save(tx, widget)
    # The event's time is the widget's new `updated_at`: replaying it restores that too.
    await record(tx, board, "widget.points", {"key": key, "points": appended}, at=widget.updated_at)
    return widget


async def delete_widget(tx: Tx, slug: str, key: str, *, if_match: int | None) -> None:
    board, widget = await _locked(tx, slug, key)
    check_version(widget.version, if_match, f"widget {key!r}")
    tx.queue(delete(WIDGETS).where(WIDGETS.c.id == widget.id))
    await record(tx, board, "widget.deleted", {"key": key})


async def _touch(tx: Tx, board: Head, widget: WidgetRow) -> None:
    _bump(widget)
    _save(tx, widget)
    await record(tx, board, UPDATED, widget_data(widget))
