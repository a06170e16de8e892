"""REST: widgets, values per kind, series points, events history."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers import LiveServer


async def test_put_creates_then_replaces(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    path = f"/api/boards/{slug}/widgets/cpu"
    created = await server.http.put(path, json={"kind": "gauge", "title": "CPU", "value": 12.5})
    assert created.status_code == 201
    assert created.json()["version"] == 1
    replaced = await server.http.put(path, json={"kind": "number", "value": 3})
    assert replaced.status_code == 200
    body = replaced.json()
    assert (body["kind"], body["title"], body["value"], body["version"]) == ("number", "", 3, 2)
    board = (await server.http.get(f"/api/boards/{slug}")).json()
    assert board["seq"] == 2
    assert board["widgets"] == [body]


async def test_patch_widget_value_and_if_match(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    await server.put_widget(slug, "n", kind="number", title="N", value=1)
    path = f"/api/boards/{slug}/widgets/n"
    ok = await server.http.patch(path, json={"value": 2}, headers={"If-Match": '"1"'})
    assert ok.status_code == 200
    assert ok.json()["value"] == 2
    assert ok.json()["title"] == "N"
    assert ok.headers["etag"] == '"2"'
    stale = await server.http.patch(path, json={"value": 3}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    cleared = await server.http.patch(path, json={"value": None})
    assert cleared.json()["value"] is None
    assert (await server.http.get(path)).json()["version"] == 3


@pytest.mark.parametrize(
    ("kind", "config", "value"),
    [
        ("number", {}, "12"),
        ("number", {}, True),
        ("number", {}, 2**60),
        ("number", {}, [1]),
        ("text", {}, 5),
        ("text", {}, "x" * 10_001),
        ("status", {}, {"state": "ok"}),
        ("status", {}, "x" * 65),
        ("gauge", {"min": 0, "max": 10}, 11),
        ("gauge", {}, "high"),
        ("gauge", {"min": 5, "max": 1}, 3),
        ("series", {}, 5),
        ("series", {}, [{"v": "x"}]),
        ("series", {}, [{"t": "yesterday", "v": 1}]),
        ("series", {"max_points": 0}, []),
        ("trend", {}, 5),
        ("trend", {"max_points": 10_001}, []),
        ("table", {}, [["a"]]),
        ("table", {}, {"columns": [], "rows": []}),
        ("table", {}, {"columns": ["a", "b"], "rows": [[1]]}),
        ("table", {}, {"columns": ["a"], "rows": [[{"nested": 1}]]}),
        ("table", {}, {"columns": ["a"], "rows": [["x" * 201]]}),
        ("table", {}, {"columns": ["a"], "rows": [[1]] * 201}),
        ("table", {}, {"columns": [f"c{i}" for i in range(21)], "rows": []}),
        ("table", {}, {"columns": ["a"], "rows": [], "extra": 1}),
        ("list", {}, {"label": "a"}),
        ("list", {}, [{"value": 1}]),
        ("list", {}, [{"label": 1, "value": 1}]),
        ("list", {}, [{"label": "a", "value": [1]}]),
        ("list", {}, [{"label": "a", "value": 1, "colour": "red"}]),
        ("list", {}, [{"label": "a"}] * 101),
        ("list", {"sort": "random"}, []),
        ("nonsense", {}, 1),
    ],
)
async def test_values_validated_per_kind(
    server: LiveServer, slug: str, kind: str, config: dict[str, Any], value: Any
) -> None:
    await server.create_board(slug)
    response = await server.http.put(
        f"/api/boards/{slug}/widgets/w", json={"kind": kind, "config": config, "value": value}
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"
    board = (await server.http.get(f"/api/boards/{slug}")).json()
    assert board["widgets"] == []
    assert board["seq"] == 0


@pytest.mark.parametrize(
    ("kind", "config", "value"),
    [
        ("number", {"unit": "req/s"}, 42),
        ("number", {}, -1.5),
        ("text", {}, "hello ünïcode ✓"),
        ("status", {}, "ok"),
        ("gauge", {"min": 0, "max": 100}, 100),
        ("series", {"max_points": 3}, [{"t": "2026-01-01T00:00:00Z", "v": 1}]),
        ("trend", {"max_points": 3}, [{"t": "2026-01-01T00:00:00Z", "v": 1}]),
        (
            "table",
            {},
            {"columns": ["host", "cpu", "up"], "rows": [["a", 1.5, True], ["b", None, False]]},
        ),
        ("table", {}, {"columns": ["a"], "rows": [[i] for i in range(200)]}),
        (
            "list",
            {"sort": "desc"},
            [{"label": "ann", "value": 12}, {"label": "bob", "value": "n/a"}],
        ),
        ("list", {}, [{"label": "just a label"}]),
        ("text", {}, None),
    ],
)
async def test_valid_values_accepted(
    server: LiveServer, slug: str, kind: str, config: dict[str, Any], value: Any
) -> None:
    await server.create_board(slug)
    widget = await server.put_widget(slug, "w", kind=kind, config=config, value=value)
    if kind in ("series", "trend"):
        assert widget["value"] == [{"t": "2026-01-01T00:00:00.000Z", "v": 1}]
    else:
        assert widget["value"] == value


async def test_series_points_append_and_trim(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    await server.put_widget(slug, "s", kind="series", config={"max_points": 3})
    path = f"/api/boards/{slug}/widgets/s/points"
    for i in range(2):
        response = await server.http.post(path, json={"points": [{"v": i}, {"v": i + 0.5}]})
        assert response.status_code == 200, response.text
    value = response.json()["value"]
    assert [p["v"] for p in value] == [0.5, 1, 1.5]
    assert all(p["t"].endswith("Z") for p in value)
    events = (await server.http.get(f"/api/boards/{slug}/events", params={"after": 1})).json()
    assert [e["event"] for e in events["items"]] == ["widget.points", "widget.points"]
    assert events["items"][-1]["data"] == {"key": "s", "points": value[-2:]}

    not_series = await server.put_widget(slug, "n", value=1)
    assert not_series["kind"] == "number"
    bad = await server.http.post(
        f"/api/boards/{slug}/widgets/n/points", json={"points": [{"v": 1}]}
    )
    assert bad.status_code == 422
    empty = await server.http.post(path, json={"points": []})
    assert empty.status_code == 422

    await server.put_widget(slug, "t", kind="trend", config={"max_points": 2})
    trend = f"/api/boards/{slug}/widgets/t/points"
    for v in (1, 2, 3):
        response = await server.http.post(trend, json={"points": [{"v": v}]})
        assert response.status_code == 200, response.text
    assert [p["v"] for p in response.json()["value"]] == [2, 3]


async def test_delete_widget(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    await server.put_widget(slug, "w", value=1)
    path = f"/api/boards/{slug}/widgets/w"
    assert (await server.http.delete(path)).status_code == 204
    assert (await server.http.get(path)).status_code == 404
    assert (await server.http.delete(path)).status_code == 404
    assert (await server.http.get(f"/api/boards/{slug}")).json()["seq"] == 2


async def test_widget_key_validated(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    response = await server.http.put(f"/api/boards/{slug}/widgets/Bad_Key", json={"kind": "text"})
    assert response.status_code == 422


async def test_events_history_pages(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    await server.put_widget(slug, "w", value=0)
    for i in range(1, 6):
        await server.set_value(slug, "w", i)
    path = f"/api/boards/{slug}/events"
    page = (await server.http.get(path, params={"after": 0, "limit": 4})).json()
    assert [e["seq"] for e in page["items"]] == [1, 2, 3, 4]
    assert page["seq"] == 6
    assert page["next_after"] == 4
    rest = (await server.http.get(path, params={"after": 4})).json()
    assert [e["seq"] for e in rest["items"]] == [5, 6]
    assert rest["next_after"] is None
    event = rest["items"][-1]
    assert event["channel"] == f"board:{slug}"
    assert event["event"] == "widget.updated"
    assert event["data"]["value"] == 5
    assert event["data"] == (await server.http.get(f"/api/boards/{slug}/widgets/w")).json()
    assert (await server.http.get(path, params={"after": -1})).status_code == 422


async def test_racing_appends_keep_every_point(server: LiveServer, slug: str) -> None:
    """The locked path after waiting for the board lock: it reads the widget as the write
    before it left it (it once read the snapshot from before it, and kept 39 of 180
    points here)."""
    await server.create_board(slug)
    await server.put_widget(slug, "s", kind="series", config={"max_points": 1000}, value=[])

    async def append(n: int) -> None:
        for i in range(15):
            points = {"points": [{"v": n * 100 + i}]}
            response = await server.http.post(f"/api/boards/{slug}/widgets/s/points", json=points)
            assert response.status_code == 200

    await asyncio.gather(*(append(n) for n in range(12)))
    widget = (await server.http.get(f"/api/boards/{slug}/widgets/s")).json()
    assert (len(widget["value"]), widget["version"]) == (180, 181)
