"""Helpers the unit tier shares: writing events the way the app does (commit, then
publish), a sink that records what a channel forwards, and reading a connection's queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson

from switchboard.names import channel_name
from switchboard.realtime.connection import Connection
from switchboard.realtime.hub import BoardChange, Run
from switchboard.realtime.publisher import Publisher
from switchboard.store import boards
from switchboard.store.db import Database
from switchboard.store.widgets import put_widget

SLUG = "ops"
CHANNEL = channel_name(SLUG)


async def create_board(db: Database, slug: str = SLUG, *, public: bool = True) -> None:
    """A board at seq 0 (creating a new board records no event)."""
    async with db.transaction() as tx:
        await boards.create_board(tx, slug=slug, title=slug, description="", public=public)


async def set_text(
    db: Database, publisher: Publisher | None, value: str, *, slug: str = SLUG, key: str = "w"
) -> int:
    """Commit one widget event, then publish it as `AppState.write` does; with no
    `publisher` the notification is lost (the store has the event, the broker never heard).
    Returns the event's seq."""
    async with db.transaction() as tx:
        await put_widget(
            tx, slug, key, kind="text", title=key, config={}, value=value, if_match=None
        )
    if publisher is not None:
        await publisher.publish(tx.events)
    return tx.events[-1][1].seq


async def set_public(db: Database, publisher: Publisher, public: bool, slug: str = SLUG) -> int:
    """Commit and publish a `board.updated` that changes who may read the board."""
    async with db.transaction() as tx:
        await boards.update_board(tx, slug, {"public": public}, if_match=None)
    await publisher.publish(tx.events)
    return tx.events[-1][1].seq


async def eventually(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Let the loop run (pump tasks, deferred broker deliveries) until `predicate` holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.002)


class RecordingSink:
    """A channel's sink that keeps everything it is handed."""

    def __init__(self) -> None:
        self.events: list[tuple[int, dict[str, Any], bytes, BoardChange | None]] = []
        self.notices: list[tuple[str, str | None]] = []
        self.runs: list[Run] = []

    @property
    def seqs(self) -> list[int]:
        return [seq for seq, *_ in self.events]

    def deliver(self, run: Run) -> None:
        self.runs.append(run)
        for seq, frame, wire, change in run.events:
            self.events.append((seq, orjson.loads(frame), wire, change))

    def notice(self, frame: str, public_frame: str | None) -> None:
        self.notices.append((frame, public_frame))


async def queued(connection: Connection) -> list[str | None]:
    """Take what `connection` has queued, as its transport would (None: the end marker)."""
    frames: list[str | None] = []
    while not connection.queue.empty():
        frames.append(await connection.next_frame())
    return frames


async def parsed(connection: Connection) -> list[dict[str, Any]]:
    """The JSON frames queued on a WebSocket-shaped connection (the end marker left out)."""
    return [orjson.loads(frame) for frame in await queued(connection) if frame is not None]


def frame(seq: int, event: str = "widget.updated", **data: Any) -> str:
    """An `event` frame as the hub forwards it."""
    body = {"type": "event", "channel": CHANNEL, "seq": seq, "event": event, "data": data}
    return orjson.dumps(body).decode()
