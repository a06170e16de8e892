"""Every event the protocol names has a replay rule (a new event without one would leave
`?at=` unable to rebuild past it), and the rules that are not plain replacement hold."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from switchboard.realtime.asyncapi import EVENT_DATA
from switchboard.store.models import Event
from switchboard.store.replay import RULES, ReplayError, replay

AT = datetime(2026, 12, 3, 12, 0, 0, 500000, tzinfo=UTC)
SERIES = {"key": "s", "kind": "series", "config": {"max_points": 3}, "value": None, "version": 4}
BOARD = {"slug": "b", "title": "", "seq": 9, "widgets": [SERIES, {"key": "n", "value": 1}]}


def _event(seq: int, name: str, data: dict[str, Any]) -> Event:
    return Event(board_id=1, seq=seq, name=name, data=data, at=AT)


def test_every_event_has_a_rule() -> None:
    assert set(RULES) == set(EVENT_DATA)


def test_points_append_trim_and_stamp() -> None:
    points = [{"t": "x", "v": v} for v in range(2)]
    state = replay(BOARD, [_event(10, "widget.points", {"key": "s", "points": points})] * 2)
    series = state["widgets"][0]
    assert [p["v"] for p in series["value"]] == [1, 0, 1]  # the newest max_points
    assert (series["version"], series["updated_at"]) == (6, "2026-12-03T12:00:00.500Z")
    assert state["seq"] == 10
    assert SERIES["value"] is None  # the input is untouched


def test_recreated_widget_goes_last_and_a_new_life_has_none() -> None:
    events = [
        _event(10, "widget.deleted", {"key": "s"}),
        _event(11, "widget.created", {**SERIES, "value": []}),
    ]
    assert [w["key"] for w in replay(BOARD, events)["widgets"]] == ["n", "s"]
    reborn = replay(BOARD, [_event(12, "board.created", {"slug": "b", "title": "again"})])
    assert (reborn["title"], reborn["widgets"], reborn["seq"]) == ("again", [], 12)


def test_an_unknown_event_is_refused() -> None:
    with pytest.raises(ReplayError):
        replay(BOARD, [_event(10, "board.renamed", {})])
