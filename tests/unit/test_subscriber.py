"""Unit tier (`uv run pytest tests/unit`, seconds, no server): `Subscriber`, the
subscribe/unsubscribe logic both transports share, on a `Connection` with no socket
behind it, the memory broker and a SQLite store: snapshots, replays, resets, the handoff
to live events, and leaving the hub's channel however a subscription ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from switchboard.auth.principal import ANONYMOUS, Principal
from switchboard.config import Settings
from switchboard.realtime.codes import CloseCode
from switchboard.realtime.connection import Connection
from switchboard.realtime.hub import Hub
from switchboard.realtime.presence import MemoryPresence, Presence
from switchboard.realtime.protocol import ProtocolError
from switchboard.realtime.publisher import Publisher
from switchboard.realtime.sse import SseTransport
from switchboard.realtime.subscriber import Subscriber
from switchboard.realtime.transport import Transport
from switchboard.store import boards
from switchboard.store.db import Database
from tests.unit.twins import (
    CHANNEL,
    SLUG,
    create_board,
    eventually,
    parsed,
    queued,
    set_public,
    set_text,
)


@pytest.fixture
async def presence(hub: Hub) -> AsyncIterator[Presence]:
    """Presence in this process; its loop is not started (joins and leaves still count)."""
    presence = Presence(MemoryPresence(), hub.notify, interval=1.0)
    yield presence
    await presence.close()


@pytest.fixture
async def history(db: Database, publisher: Publisher) -> int:
    """Three events on `ops` (widget `w` created then updated twice); the head's seq."""
    for value in ("a", "b", "c"):
        seq = await set_text(db, publisher, value)
    return seq


def make_subscriber(
    hub: Hub,
    db: Database,
    presence: Presence,
    *,
    principal: Principal = ANONYMOUS,
    transport: Transport | None = None,
    **settings: Any,
) -> Subscriber:
    connection = Connection(transport or Transport(), max_queue=100, principal=principal)
    return Subscriber(connection, hub=hub, db=db, presence=presence, settings=Settings(**settings))


async def test_subscribe_sends_subscribed_then_the_snapshot_then_live_events(
    hub: Hub, db: Database, presence: Presence, publisher: Publisher, history: int
) -> None:
    subscriber = make_subscriber(hub, db, presence)
    await subscriber.subscribe(CHANNEL, SLUG, None, "r1")
    subscribed, snapshot = await parsed(subscriber.connection)
    assert subscribed == {"type": "subscribed", "channel": CHANNEL, "seq": history, "id": "r1"}
    assert snapshot["type"] == "snapshot"
    assert snapshot["seq"] == snapshot["data"]["seq"] == history
    assert [(w["key"], w["value"]) for w in snapshot["data"]["widgets"]] == [("w", "c")]
    assert presence.local[CHANNEL] == {"anonymous": 1}
    await set_text(db, publisher, "d")
    await eventually(lambda: not subscriber.connection.queue.empty())
    [live] = await parsed(subscriber.connection)
    assert (live["type"], live["seq"], live["data"]["value"]) == ("event", history + 1, "d")


async def test_since_replays_the_stored_events_after_it(
    hub: Hub, db: Database, presence: Presence, history: int
) -> None:
    subscriber = make_subscriber(hub, db, presence, replay_page_size=1)  # one event a page
    await subscriber.subscribe(CHANNEL, SLUG, 1, 5)
    subscribed, *replay = await parsed(subscriber.connection)
    assert (subscribed["type"], subscribed["seq"], subscribed["id"]) == ("subscribed", history, 5)
    assert [(f["type"], f["seq"]) for f in replay] == [("event", 2), ("event", 3)]
    assert subscriber.connection.subscriptions[CHANNEL].position == history


async def test_since_at_the_head_replays_nothing(
    hub: Hub, db: Database, presence: Presence, history: int
) -> None:
    subscriber = make_subscriber(hub, db, presence)
    await subscriber.subscribe(CHANNEL, SLUG, history, None)
    assert [f["type"] for f in await parsed(subscriber.connection)] == ["subscribed"]


async def test_since_ahead_of_the_head_resets_to_a_snapshot(
    hub: Hub, db: Database, presence: Presence, history: int
) -> None:
    subscriber = make_subscriber(hub, db, presence)
    await subscriber.subscribe(CHANNEL, SLUG, history + 10, None)
    subscribed, reset, snapshot = await parsed(subscriber.connection)
    assert subscribed["type"] == "subscribed"
    assert reset == {"type": "reset", "channel": CHANNEL, "reason": "history_expired"}
    assert (snapshot["type"], snapshot["seq"]) == ("snapshot", history)


async def test_since_before_the_boards_current_life_resets(
    hub: Hub, db: Database, presence: Presence, history: int
) -> None:
    async with db.transaction() as tx:  # delete and re-create: the old history is dropped
        await boards.delete_board(tx, SLUG, if_match=None)
    await create_board(db)
    subscriber = make_subscriber(hub, db, presence)
    await subscriber.subscribe(CHANNEL, SLUG, 1, None)
    kinds = [(f["type"], f.get("seq")) for f in await parsed(subscriber.connection)]
    assert kinds == [("subscribed", history + 2), ("reset", None), ("snapshot", history + 2)]


async def test_a_board_deleted_while_its_replay_starts_answers_the_subscribe(
    hub: Hub, db: Database, presence: Presence, history: int
) -> None:
    subscriber = make_subscriber(hub, db, presence)
    connection = subscriber.connection
    waited_once = connection.room

    async def delete_then_wait(frame_size: int, most: int) -> int:
        """The replay's first wait for room: the board is deleted right then."""
        connection.room = waited_once  # type: ignore[method-assign]
        async with db.transaction() as tx:
            await boards.delete_board(tx, SLUG, if_match=None)
        return await waited_once(frame_size, most)

    connection.room = delete_then_wait  # type: ignore[method-assign]
    with pytest.raises(ProtocolError) as caught:
        await subscriber.subscribe(CHANNEL, SLUG, 1, "r9")
    assert (caught.value.code, caught.value.id) == ("not_found", "r9")
    assert connection.subscriptions == {}


async def test_a_private_board_is_not_found_and_leaves_nothing_behind(
    hub: Hub, db: Database, presence: Presence, publisher: Publisher
) -> None:
    await set_public(db, publisher, False)
    subscriber = make_subscriber(hub, db, presence)
    with pytest.raises(ProtocolError) as caught:
        await subscriber.subscribe(CHANNEL, SLUG, None, "x")
    assert (caught.value.code, caught.value.id) == ("not_found", "x")
    assert subscriber.connection.subscriptions == {}
    assert CHANNEL not in hub.channels
    assert CHANNEL not in presence.local
    assert subscriber.connection.queue.empty()


async def test_subscribing_twice_or_too_often_is_refused(
    hub: Hub, db: Database, presence: Presence
) -> None:
    await create_board(db, "other")
    subscriber = make_subscriber(hub, db, presence, ws_max_subscriptions=1)
    await subscriber.subscribe(CHANNEL, SLUG, None, None)
    with pytest.raises(ProtocolError) as again:
        await subscriber.subscribe(CHANNEL, SLUG, None, 1)
    with pytest.raises(ProtocolError) as more:
        await subscriber.subscribe("board:other", "other", None, 2)
    assert (again.value.code, again.value.id) == ("already_subscribed", 1)
    assert (more.value.code, more.value.id) == ("too_many_subscriptions", 2)
    assert "board:other" not in hub.channels


async def test_unsubscribe_leaves_the_channel_and_presence(
    hub: Hub, db: Database, presence: Presence
) -> None:
    subscriber = make_subscriber(hub, db, presence)
    await subscriber.subscribe(CHANNEL, SLUG, None, None)
    await queued(subscriber.connection)
    await subscriber.unsubscribe(CHANNEL, "u1")
    assert await parsed(subscriber.connection) == [
        {"type": "unsubscribed", "channel": CHANNEL, "id": "u1"}
    ]
    assert CHANNEL not in hub.channels
    assert CHANNEL not in presence.local
    with pytest.raises(ProtocolError) as caught:
        await subscriber.unsubscribe(CHANNEL, "u2")
    assert (caught.value.code, caught.value.id) == ("not_subscribed", "u2")


async def test_close_leaves_every_channel_but_others_stay(
    hub: Hub, db: Database, presence: Presence
) -> None:
    await create_board(db, "other")
    gone, staying = (make_subscriber(hub, db, presence) for _ in range(2))
    await gone.subscribe(CHANNEL, SLUG, None, None)
    await gone.subscribe("board:other", "other", None, None)
    await staying.subscribe(CHANNEL, SLUG, None, None)
    gone.close()
    assert gone.connection.subscriptions == {}
    assert set(hub.channels) == {CHANNEL}
    assert presence.local == {CHANNEL: {"anonymous": 1}}


async def test_a_board_made_private_unsubscribes_with_an_error_frame(
    hub: Hub, db: Database, presence: Presence, publisher: Publisher
) -> None:
    subscriber = make_subscriber(hub, db, presence)
    await subscriber.subscribe(CHANNEL, SLUG, None, None)
    await queued(subscriber.connection)
    await set_public(db, publisher, False)
    await eventually(lambda: CHANNEL not in subscriber.connection.subscriptions)
    [error] = await parsed(subscriber.connection)
    assert (error["type"], error["code"], error["channel"]) == ("error", "not_found", CHANNEL)
    assert subscriber.connection.close_code is None
    assert CHANNEL not in hub.channels


async def test_a_deleted_board_ends_an_sse_stream_after_the_deletion(
    hub: Hub, db: Database, presence: Presence, publisher: Publisher
) -> None:
    subscriber = make_subscriber(hub, db, presence, transport=SseTransport())
    await subscriber.subscribe(CHANNEL, SLUG, None, None)
    [snapshot] = await queued(subscriber.connection)  # `subscribed` is implicit in SSE
    assert snapshot is not None
    assert snapshot.startswith("event: snapshot\nid: 0\n")
    async with db.transaction() as tx:
        await boards.delete_board(tx, SLUG, if_match=None)
    await publisher.publish(tx.events)
    await eventually(lambda: subscriber.connection.closed.is_set())
    deletion, end = await queued(subscriber.connection)
    assert end is None
    assert deletion is not None
    assert deletion.startswith("id: 1\ndata: ")
    assert orjson.loads(deletion.split("data: ", 1)[1])["event"] == "board.deleted"
    assert subscriber.connection.close_code == CloseCode.NORMAL
    assert CHANNEL not in hub.channels
