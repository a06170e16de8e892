"""REST: boards, on the embedded default and on PostgreSQL + Redis."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import LiveServer


async def test_create_get_board(server: LiveServer, slug: str) -> None:
    created = await server.create_board(slug, title="Ops", description="d", public=True)
    assert created["slug"] == slug
    assert created["seq"] == 0
    assert created["version"] == 1
    assert created["widgets"] == []
    assert created["public"] is True
    assert created["created_at"].endswith("Z")

    response = await server.http.get(f"/api/boards/{slug}")
    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    assert response.json() == created


async def test_duplicate_slug_conflicts(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    response = await server.http.post("/api/boards", json={"slug": slug})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    "body",
    [
        {"slug": "Has-Upper"},
        {"slug": "-leading-dash"},
        {"slug": "../etc/passwd"},
        {"slug": "x" * 65},
        {"slug": "ok", "unknown": 1},
        {"slug": "ok", "public": "yes"},
        {"slug": "ok", "title": 5},
        {},
    ],
)
async def test_create_rejects_bad_input(server: LiveServer, body: dict[str, object]) -> None:
    response = await server.http.post("/api/boards", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["message"]
    assert (await server.http.get("/api/boards/ok")).status_code == 404


async def test_malformed_json_is_400(server: LiveServer) -> None:
    response = await server.http.post(
        "/api/boards", content=b'{"slug": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"


async def test_unknown_board_is_404_in_error_shape(server: LiveServer) -> None:
    for method, path in [
        ("GET", "/api/boards/nope"),
        ("PATCH", "/api/boards/nope"),
        ("DELETE", "/api/boards/nope"),
        ("GET", "/api/boards/nope/events"),
        ("GET", "/api/no-such-route"),
    ]:
        response = await server.http.request(method, path, json={} if method == "PATCH" else None)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"


async def test_patch_board_with_if_match(server: LiveServer, slug: str) -> None:
    await server.create_board(slug, title="a")
    response = await server.http.patch(
        f"/api/boards/{slug}", json={"title": "b"}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200
    assert response.json()["title"] == "b"
    assert response.json()["version"] == 2
    assert response.json()["seq"] == 1
    assert response.headers["etag"] == '"2"'

    stale = await server.http.patch(
        f"/api/boards/{slug}", json={"title": "c"}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "precondition_failed"
    board = (await server.http.get(f"/api/boards/{slug}")).json()
    assert board["title"] == "b"
    assert board["seq"] == 1


async def test_list_boards_cursor_pagination(server: LiveServer, slug: str) -> None:
    slugs = [f"{slug}-{i}" for i in range(5)]
    for s in slugs:
        await server.create_board(s)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await server.http.get("/api/boards", params=params)).json()
        assert len(page["items"]) <= 2
        seen += [b["slug"] for b in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [s for s in seen if s.startswith(slug)] == slugs
    assert seen == sorted(seen)
    bad = await server.http.get("/api/boards", params={"cursor": "%%%"})
    assert bad.status_code == 400


async def test_delete_board_then_recreate_keeps_counting_with_a_new_history(
    server: LiveServer, slug: str
) -> None:
    await server.create_board(slug)
    await server.put_widget(slug, "w", value=1)
    response = await server.http.delete(f"/api/boards/{slug}")
    assert response.status_code == 204
    assert (await server.http.get(f"/api/boards/{slug}")).status_code == 404
    assert slug not in [b["slug"] for b in (await server.http.get("/api/boards")).json()["items"]]

    again = await server.create_board(slug)
    assert again["widgets"] == []
    assert again["seq"] == 3  # widget.created, board.deleted, board.created
    # The old life's events are gone: reading from before the re-creation is 410.
    assert (await server.http.get(f"/api/boards/{slug}/events")).status_code == 410
    events = (await server.http.get(f"/api/boards/{slug}/events?after=2")).json()["items"]
    assert [e["event"] for e in events] == ["board.created"]


def _summary(board: dict[str, Any]) -> dict[str, Any]:
    """A board body without its widgets: what `board.updated` / `board.created` carry."""
    return {name: value for name, value in board.items() if name != "widgets"}


async def _history(server: LiveServer, slug: str, after: int) -> list[dict[str, Any]]:
    response = await server.http.get(f"/api/boards/{slug}/events", params={"after": after})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_board_events_carry_the_board_as_of_themselves(server: LiveServer, slug: str) -> None:
    """`data` of `board.updated` and `board.created` is the board after that very event, its
    `seq` included: the same body the write answered, on REST and on a subscription."""
    await server.create_board(slug)
    ws = await server.ws()
    await ws.subscribe(slug)
    patched = await server.http.patch(f"/api/boards/{slug}", json={"title": "b"})
    (updated,) = await _history(server, slug, 0)
    (live,) = await ws.events(1)
    for event in (updated, live):
        assert (event["event"], event["seq"], event["data"]["seq"]) == ("board.updated", 1, 1)
        assert event["data"] == _summary(patched.json())
    await ws.close()

    assert (await server.http.delete(f"/api/boards/{slug}")).status_code == 204  # seq 2
    again = await server.create_board(slug, title="c")
    (created,) = await _history(server, slug, 2)
    ws = await server.ws()
    await ws.subscribe(slug, since=2)
    (replayed,) = await ws.events(1)
    for event in (created, replayed):
        assert (event["event"], event["seq"], event["data"]["seq"]) == ("board.created", 3, 3)
        assert event["data"] == _summary(again)
    await ws.close()


async def test_layout_is_set_carried_and_returned(server: LiveServer, slug: str) -> None:
    """A layout is part of the board: PATCHed (If-Match honoured), on GET and the list, in
    the `board.updated` event and in a fresh subscription's snapshot."""
    await server.create_board(slug, public=True)
    assert (await server.http.get(f"/api/boards/{slug}")).json()["layout"] == []
    ws = await server.ws()
    await ws.subscribe(slug)
    layout = [{"key": "cpu", "w": 2, "h": 3}, {"key": "not-yet"}, {"key": "disk", "w": 4}]
    stored = [
        {"key": "cpu", "w": 2, "h": 3},
        {"key": "not-yet", "w": None, "h": None},
        {"key": "disk", "w": 4, "h": None},
    ]
    response = await server.http.patch(
        f"/api/boards/{slug}", json={"layout": layout}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    assert response.json()["layout"] == stored
    assert response.headers["etag"] == '"2"'
    (event,) = await ws.events(1)
    assert event["event"] == "board.updated"
    assert event["data"]["layout"] == stored
    await ws.close()

    board = (await server.http.get(f"/api/boards/{slug}")).json()
    assert board["layout"] == stored
    listed = (await server.http.get("/api/boards", params={"limit": 1000})).json()["items"]
    assert [b["layout"] for b in listed if b["slug"] == slug] == [stored]
    fresh = await server.ws()
    await fresh.subscribe(slug)
    snapshot = await fresh.recv()
    assert (snapshot["type"], snapshot["data"]["layout"]) == ("snapshot", stored)
    await fresh.close()

    stale = await server.http.patch(
        f"/api/boards/{slug}", json={"layout": []}, headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    cleared = await server.http.patch(f"/api/boards/{slug}", json={"layout": []})
    assert cleared.json()["layout"] == []


@pytest.mark.parametrize(
    ("layout", "problem"),
    [
        ([{"key": "cpu"}, {"key": "cpu", "w": 2}], "'cpu' is in the layout twice"),
        ([{"key": "cpu", "w": 5}], "less than or equal to 4"),
        ([{"key": "cpu", "h": 0}], "greater than or equal to 1"),
        ([{"key": "cpu", "w": 1.5}], "valid integer"),
        ([{"key": "cpu", "w": "2"}], "valid integer"),
        ([{"key": "Not A Key"}], "should match pattern"),
        ([{"w": 2}], "Field required"),
        ([{"key": "cpu", "x": 1}], "Extra inputs are not permitted"),
        ({"cpu": {"w": 2}}, "valid list"),
        ([{"key": f"k{i}"} for i in range(1001)], "at most 1000 items"),
    ],
)
async def test_layout_validation_errors_name_the_problem(
    server: LiveServer, slug: str, layout: Any, problem: str
) -> None:
    await server.create_board(slug)
    response = await server.http.patch(f"/api/boards/{slug}", json={"layout": layout})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(problem in detail["msg"] for detail in error["details"]), error
    assert all(detail["loc"][:2] == ["body", "layout"] for detail in error["details"]), error
    board = (await server.http.get(f"/api/boards/{slug}")).json()
    assert (board["layout"], board["version"]) == ([], 1)
