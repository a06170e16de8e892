"""Widget operations: every change validates the value for its kind and records one event."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard import kinds
from switchboard.errors import AppError, NotFound, PreconditionFailed, ValidationFailed
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
    _apply(widget, _patched(widget, changes))
    await _touch(tx, board, widget)
    return widget


def _patched(widget: Widget, changes: dict[str, Any]) -> dict[str, Any]:
    """The widget's title, config and value after `changes`, validated; `widget` is untouched."""
    config = kinds.validate_config(widget.kind, changes.get("config", widget.config))
    # Re-validating the kept value too applies a changed config (a series trims to max_points).
    value = kinds.validate_value(widget.kind, changes.get("value", widget.value), config)
    return {"title": changes.get("title", widget.title), "config": config, "value": value}


def _apply(widget: Widget, fields: dict[str, Any]) -> None:
    widget.title, widget.config, widget.value = fields["title"], fields["config"], fields["value"]


def _bump(widget: Widget) -> None:
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


async def update_widgets(tx: Tx, slug: str, batch: Mapping[str, Change]) -> list[Widget]:
    """Patch several widgets of one board as one write: one version bump each, ONE
    `widgets.updated` event (one seq) listing them all, in the batch's order.

    All or nothing, and every failing key is reported at once: `ValidationFailed` (422)
    if any entry names no widget or is invalid for its widget (as `update_widget` judges
    it); otherwise `PreconditionFailed` (412) if any entry's `version` is stale. Each
    error's `details` holds one `{"loc": ["body", "widgets", key], "msg": …}` per key."""
    board = await lock_board(tx, slug)
    found = {
        widget.key: widget
        for widget in await tx.session.scalars(
            select(Widget).where(Widget.board_id == board.id, Widget.key.in_(list(batch)))
        )
    }
    patched: dict[str, dict[str, Any]] = {}
    invalid: dict[str, str] = {}
    stale: dict[str, str] = {}
    for key, change in batch.items():
        widget = found.get(key)
        if widget is None:
            invalid[key] = _missing(slug, key).message
            continue
        try:
            patched[key] = _patched(widget, change.fields)
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
    for key, fields in patched.items():
        _apply(found[key], fields)
        _bump(found[key])
    changed = [found[key] for key in patched]
    await record(tx, board, "widgets.updated", {"widgets": [widget_data(w) for w in changed]})
    return changed


async def append_points(tx: Tx, slug: str, key: str, points: list[Any]) -> Widget:
    board, widget = await _locked(tx, slug, key)
    if widget.kind != "series":
        raise ValidationFailed(f"widget {key!r} is a {widget.kind}, not a series")
    before = widget.value if isinstance(widget.value, list) else []
    widget.value = kinds.append_points(before, points, widget.config)
    appended = widget.value[-len(points) :]
    _bump(widget)
    await record(tx, board, "widget.points", {"key": key, "points": appended})
    return widget


async def delete_widget(tx: Tx, slug: str, key: str, *, if_match: int | None) -> None:
    board, widget = await _locked(tx, slug, key)
    check_version(widget.version, if_match, f"widget {key!r}")
    await tx.session.delete(widget)
    await record(tx, board, "widget.deleted", {"key": key})


async def _touch(tx: Tx, board: Board, widget: Widget) -> None:
    _bump(widget)
    await record(tx, board, "widget.updated", widget_data(widget))
