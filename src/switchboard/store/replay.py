"""A board's state carried forward through its events: what `GET` showed after each.

Pure functions on the JSON shape of `GET /api/boards/{slug}` (`resources.BoardOut`):
the events carry whole widgets and whole board fields, so each applies without reading
anything else. The one exception, `widget.points`, carries the points appended; the
widget's `config.max_points` (in the state) and the event's time give the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from switchboard import kinds
from switchboard.resources import StoredEvent
from switchboard.timefmt import iso

Widgets = dict[str, dict[str, Any]]
"""The board's widgets by key, in the order `GET` lists them (creation order)."""


class ReplayError(Exception):
    """An event this module cannot apply (a new event name without a rule here)."""


class _Apply(Protocol):
    def __call__(self, board: dict[str, Any], widgets: Widgets, event: StoredEvent) -> None: ...


def _board_fields(board: dict[str, Any], widgets: Widgets, event: StoredEvent) -> None:
    board.update(event.data)


def _new_life(board: dict[str, Any], widgets: Widgets, event: StoredEvent) -> None:
    board.update(event.data)
    widgets.clear()


def _ended(board: dict[str, Any], widgets: Widgets, event: StoredEvent) -> None:
    widgets.clear()


def _widget(board: dict[str, Any], widgets: Widgets, event: StoredEvent) -> None:
    widgets[event.data["key"]] = event.data  # a new key goes last, a known one stays put


def _batch(board: dict[str, Any], widgets: Widgets, event: StoredEvent) -> None:
    for widget in event.data["widgets"]:
        widgets[widget["key"]] = widget


def _points(board: dict[str, Any], widgets: Widgets, event: StoredEvent) -> None:
    """The points appended (already validated), trimmed to `max_points` as the write did;
    the write bumped the version and stamped the widget with the event's time."""
    widget = widgets[event.data["key"]]
    before = widget["value"] if isinstance(widget["value"], list) else []
    value = (before + event.data["points"])[-kinds.max_points(widget["config"]) :]
    widgets[widget["key"]] = {
        **widget,
        "value": value,
        "version": widget["version"] + 1,
        "updated_at": iso(event.at),
    }


def _deleted(board: dict[str, Any], widgets: Widgets, event: StoredEvent) -> None:
    widgets.pop(event.data["key"], None)


RULES: dict[str, _Apply] = {
    "board.created": _new_life,
    "board.updated": _board_fields,
    "board.deleted": _ended,
    "widget.created": _widget,
    "widget.updated": _widget,
    "widgets.updated": _batch,
    "widget.points": _points,
    "widget.deleted": _deleted,
}


def replay(state: dict[str, Any], events: Iterable[StoredEvent]) -> dict[str, Any]:
    """`state` (a `GET` answer, not changed) carried through `events`, oldest first: the
    `GET` answer right after the last of them (`seq` is its seq)."""
    board = {name: value for name, value in state.items() if name != "widgets"}
    widgets: Widgets = {widget["key"]: widget for widget in state["widgets"]}
    for event in events:
        rule = RULES.get(event.name)
        if rule is None:
            raise ReplayError(f"no replay rule for event {event.name!r}")
        rule(board, widgets, event)
        board["seq"] = event.seq
    return {**board, "widgets": list(widgets.values())}
