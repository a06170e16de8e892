"""The WebSocket protocol, against a real server on both backends."""

from __future__ import annotations

import asyncio

import pytest

from tests.helpers import LiveServer


async def test_subscribe_snapshot_then_live(server: LiveServer, slug: str) -> None:
    await server.create_board(slug, title="Ops")
    await server.put_widget(slug, "cpu", kind="gauge", value=10)
    ws = await server.ws()
    subscribed = await ws.subscribe(slug, id="1")
    assert subscribed == {"type": "subscribed", "channel": f"board:{slug}", "seq": 1, "id": "1"}
    snapshot = await ws.recv()
    assert snapshot["type"] == "snapshot"
    assert snapshot["seq"] == 1
    assert snapshot["data"] == (await server.http.get(f"/api/boards/{slug}")).json()

    widget = await server.set_value(slug, "cpu", 55)
    (event,) = await ws.events(1)
    assert event["type"] == "event"
    assert event["channel"] == f"board:{slug}"
    assert event["seq"] == 2
    assert event["event"] == "widget.updated"
    assert event["data"] == widget
    assert event["at"].endswith("Z")
    await ws.close()


async def test_every_event_kind_is_delivered(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    ws = await server.ws()
    await ws.subscribe(slug)
    assert (await ws.recv())["type"] == "snapshot"
    await server.put_widget(slug, "s", kind="series")
    await server.http.post(f"/api/boards/{slug}/widgets/s/points", json={"points": [{"v": 1}]})
    await server.set_value(slug, "s", [])
    await server.http.delete(f"/api/boards/{slug}/widgets/s")
    await server.http.patch(f"/api/boards/{slug}", json={"title": "T"})
    await server.http.delete(f"/api/boards/{slug}")
    events = await ws.events(6)
    assert [e["event"] for e in events] == [
        "widget.created",
        "widget.points",
        "widget.updated",
        "widget.deleted",
        "board.updated",
        "board.deleted",
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[4]["data"]["title"] == "T"
    assert events[5]["data"] == {"slug": slug}


async def test_since_replays_missed_events(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    await server.put_widget(slug, "w", value=0)
    for i in range(1, 30):
        await server.set_value(slug, "w", i)
    ws = await server.ws()
    subscribed = await ws.subscribe(slug, since=10)
    assert subscribed["seq"] == 30
    replay = await ws.events(20)
    assert [e["seq"] for e in replay] == list(range(11, 31))
    await server.set_value(slug, "w", 99)
    (live,) = await ws.events(1)
    assert live["seq"] == 31
    assert live["data"]["value"] == 99


async def test_since_at_head_and_ahead(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    await server.put_widget(slug, "w", value=0)
    ws = await server.ws()
    await ws.subscribe(slug, since=1)
    await server.set_value(slug, "w", 1)
    (event,) = await ws.events(1)
    assert event["seq"] == 2

    other = await server.ws()
    await other.subscribe(slug, since=50)
    assert (await other.recv())["type"] == "reset"
    snapshot = await other.recv()
    assert snapshot["type"] == "snapshot"
    assert snapshot["seq"] == 2


async def test_handoff_loses_and_duplicates_nothing(server: LiveServer, slug: str) -> None:
    """Subscribe while a writer is busy: snapshot + live must cover every seq once."""
    await server.create_board(slug)
    await server.put_widget(slug, "w", value=0)
    total = 60
    stop = asyncio.Event()

    async def writer() -> None:
        for i in range(total):
            await server.set_value(slug, "w", i)
        stop.set()

    task = asyncio.create_task(writer())
    clients = []
    for _ in range(6):
        await asyncio.sleep(0.02)
        ws = await server.ws()
        await ws.subscribe(slug)
        snapshot = await ws.recv()
        clients.append((ws, snapshot["seq"]))
    await task
    final = total + 1
    for ws, start in clients:
        events = await ws.events(final - start)
        assert [e["seq"] for e in events] == list(range(start + 1, final + 1))


async def test_many_subscriptions_on_one_connection(server: LiveServer, slug: str) -> None:
    slugs = [f"{slug}-{i}" for i in range(3)]
    ws = await server.ws()
    for s in slugs:
        await server.create_board(s)
        await ws.subscribe(s)
        assert (await ws.recv())["type"] == "snapshot"
    for s in reversed(slugs):
        await server.put_widget(s, "w", value=1)
    events = await ws.events(3)
    assert [e["channel"] for e in events] == [f"board:{s}" for s in reversed(slugs)]

    await ws.send({"type": "unsubscribe", "channel": f"board:{slugs[0]}", "id": 7})
    assert await ws.recv() == {"type": "unsubscribed", "channel": f"board:{slugs[0]}", "id": 7}
    await server.put_widget(slugs[0], "w", value=2)
    await server.put_widget(slugs[1], "w", value=2)
    (event,) = await ws.events(1)
    assert event["channel"] == f"board:{slugs[1]}"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_frame"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "subscribe"}', "invalid_channel"),
        ('{"type": "subscribe", "channel": "other:x"}', "invalid_channel"),
        ('{"type": "subscribe", "channel": "board:../x"}', "invalid_channel"),
        ('{"type": "subscribe", "channel": "board:nope-missing"}', "not_found"),
        ('{"type": "subscribe", "channel": "board:ok", "since": -1}', "invalid_frame"),
        ('{"type": "subscribe", "channel": "board:ok", "since": "3"}', "invalid_frame"),
        ('{"type": "unsubscribe", "channel": "board:ok"}', "not_subscribed"),
        ('{"type": "ping", "id": {"a": 1}}', "invalid_frame"),
    ],
)
async def test_bad_frames_get_error_and_connection_stays(
    server: LiveServer, frame: str, code: str
) -> None:
    ws = await server.ws()
    await ws.send(frame)
    reply = await ws.recv()
    assert reply["type"] == "error"
    assert reply["code"] == code
    assert reply["message"]
    await ws.send({"type": "ping", "id": "after"})
    assert await ws.recv() == {"type": "pong", "id": "after"}


async def test_binary_and_oversize_frames(server: LiveServer) -> None:
    ws = await server.ws()
    await ws.connection.send(b"\x00\x01")
    assert (await ws.recv())["code"] == "invalid_frame"
    await ws.send('{"type": "ping", "pad": "' + "x" * 70_000 + '"}')
    assert (await ws.recv())["code"] == "frame_too_large"
    await ws.send({"type": "ping"})
    assert await ws.recv() == {"type": "pong"}


async def test_double_subscribe_and_error_echoes_id(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    ws = await server.ws()
    await ws.subscribe(slug)
    await ws.recv()
    await ws.send({"type": "subscribe", "channel": f"board:{slug}", "id": 9})
    assert await ws.recv() == {
        "type": "error",
        "code": "already_subscribed",
        "message": f"already subscribed to board:{slug}",
        "id": 9,
    }
