"""Widget operations: every change validates the value for its kind and records one event."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard import kinds
from switchboard.errors import NotFound, ValidationFailed
from switchboard.resources import widget_data
from switchboard.store.boards import check_version
from switchboard.store.db import Tx
from switchboard.store.events import find_board, lock_board, record
from switchboard.store.models import Board, Widget, utcnow


async def _find(session: AsyncSession, board: Board, key: str) -> Widget | None:
    return await session.scalar(
        select(Widget).where(Widget.board_id == board.id, Widget.key == key)
    )


def _missing(slug: str, key: str) -> NotFound:
    return NotFound(f"widget {key!r} not found on board {slug!r}")


async def get_widget(session: AsyncSession, slug: str, key: str) -> Widget:
    widget = await _find(session, await find_board(session, slug), key)
    if widget is None:
        raise _missing(slug, key)
    return widget


async def _locked(tx: Tx, slug: str, key: str) -> tuple[Board, Widget]:
    board = await lock_board(tx, slug)
    widget = await _find(tx.session, board, key)
    if widget is None:
        raise _missing(slug, key)
    return board, widget


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
) -> tuple[Widget, bool]:
    """Create or wholly replace a widget; returns it and whether it was created."""
    config = kinds.validate_config(kind, config)
    value = kinds.validate_value(kind, value, config)
    board = await lock_board(tx, slug)
    widget = await _find(tx.session, board, key)
    now = utcnow()
    if widget is None:
        check_version(0, if_match, f"widget {key!r}")
        widget = Widget(
            board_id=board.id,
            key=key,
            kind=kind,
            title=title,
            config=config,
            value=value,
            version=1,
            created_at=now,
            updated_at=now,
        )
        tx.session.add(widget)
        await record(tx, board, "widget.created", widget_data(widget))
        return widget, True
    check_version(widget.version, if_match, f"widget {key!r}")
    widget.kind, widget.title, widget.config, widget.value = kind, title, config, value
    await _touch(tx, board, widget)
    return widget, False


async def update_widget(
    tx: Tx, slug: str, key: str, changes: dict[str, Any], *, if_match: int | None
) -> Widget:
    """Partial update: fields not given keep their value; the value is re-validated."""
    board, widget = await _locked(tx, slug, key)
    check_version(widget.version, if_match, f"widget {key!r}")
    config = kinds.validate_config(widget.kind, changes.get("config", widget.config))
    # Re-validating the kept value too applies a changed config (a series trims to max_points).
    value = kinds.validate_value(widget.kind, changes.get("value", widget.value), config)
    widget.title = changes.get("title", widget.title)
    widget.config, widget.value = config, value
    await _touch(tx, board, widget)
    return widget


async def append_points(tx: Tx, slug: str, key: str, points: list[Any]) -> Widget:
    board, widget = await _locked(tx, slug, key)
    if widget.kind != "series":
        raise ValidationFailed(f"widget {key!r} is a {widget.kind}, not a series")
    before = widget.value if isinstance(widget.value, list) else []
    widget.value = kinds.append_points(before, points, widget.config)
    appended = widget.value[-len(points) :]
    widget.version += 1
    widget.updated_at = utcnow()
    await record(tx, board, "widget.points", {"key": key, "points": appended})
    return widget


async def delete_widget(tx: Tx, slug: str, key: str, *, if_match: int | None) -> None:
    board, widget = await _locked(tx, slug, key)
    check_version(widget.version, if_match, f"widget {key!r}")
    await tx.session.delete(widget)
    await record(tx, board, "widget.deleted", {"key": key})


async def _touch(tx: Tx, board: Board, widget: Widget) -> None:
    widget.version += 1
    widget.updated_at = utcnow()
    await record(tx, board, "widget.updated", widget_data(widget))
