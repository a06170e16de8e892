"""One board on a live connection: its own position, state and frames, and its viewers.

A `Subscription` is an async iterator of the board's frames (`Snapshot`, `Event`, and
`Presence` once `who()` was asked), fed by the connection that owns it. It ends when it
is unsubscribed or its connection is closed, and raises when it fails (the board does not
exist or stopped being readable, or the connection failed for good).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from switchboard_client.errors import SwitchboardError, raised_for
from switchboard_client.watch import RETRIED_ERRORS, Event, Position, Reconnect, Snapshot

if TYPE_CHECKING:
    from switchboard_client.live import Live

SubscriptionState = Literal["subscribing", "subscribed", "unsubscribed", "failed"]


class Presence(TypedDict):
    """Who joined or left: identity → its new count of subscriptions (0: it left). Only
    for a subscription that asked `who()`, at most once a second (the server's pace)."""

    type: Literal["presence"]
    channel: str
    changed: dict[str, int]


LiveFrame = Event | Snapshot | Presence
Item = LiveFrame | SwitchboardError | None
"""What a subscription's queue holds: a frame, the failure to raise, or None (the end)."""


class Subscription:
    """A board on a `Live` connection: `async for frame in subscription`."""

    def __init__(
        self, live: Live, board: str, since: int | None, sink: asyncio.Queue[Item] | None
    ) -> None:
        self.board = board
        self.channel = f"board:{board}"
        self.state: SubscriptionState = "subscribing"
        self.error: SwitchboardError | None = None
        self.viewers: dict[str, int] | None = None
        """Identity → subscriptions on this board, kept current once `who()` was asked."""
        self.position = Position(since)
        self._live = live
        self._queue: asyncio.Queue[Item] = sink if sink is not None else asyncio.Queue()
        self.subscribed = asyncio.Event()

    @property
    def seq(self) -> int | None:
        """The last seq delivered (or `since`): where a reconnect resumes."""
        return self.position.seq

    @property
    def ended(self) -> bool:
        return self.state in ("unsubscribed", "failed")

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> LiveFrame:
        item = await self._queue.get()
        if item is None:
            raise StopAsyncIteration
        if isinstance(item, SwitchboardError):
            raise item
        return item

    async def who(self) -> dict[str, int]:
        """Who watches the board now (identity → subscriptions), and from then on a
        `Presence` frame in this iterator whenever that changes."""
        return await self._live.ask_presence(self)

    async def unsubscribe(self) -> None:
        """Stop receiving this board; the iterator ends."""
        await self._live.unsubscribe(self.board)

    def accept(self, frame: dict[str, Any]) -> None:
        """Take a frame of this channel from the connection; `Reconnect` when the
        connection must be replaced (a gap, the store unavailable)."""
        kind = frame.get("type")
        if kind == "subscribed":
            self.state = "subscribed"
            self.subscribed.set()
        elif kind == "presence" and isinstance(frame.get("changed"), dict):
            self._changed(frame["changed"])
        elif kind == "error":
            code, message = str(frame.get("code")), str(frame.get("message"))
            if code in RETRIED_ERRORS:
                raise Reconnect(f"{self.channel}: {code}")
            self.fail(raised_for(code, message))
        elif (ready := self.position.accept(frame)) is not None:
            self._queue.put_nowait(ready)

    def resumed_viewers(self, viewers: dict[str, int]) -> None:
        """After a reconnect, the presence reply: what changed while disconnected."""
        held = self.viewers or {}
        self._changed({who: viewers.get(who, 0) for who in held.keys() | viewers.keys()})

    def disconnected(self) -> None:
        if not self.ended:
            self.state = "subscribing"
            self.subscribed.clear()

    def fail(self, error: SwitchboardError) -> None:
        if not self.ended:
            self.state, self.error = "failed", error
            self._queue.put_nowait(error)
            self._queue.put_nowait(None)

    def end(self) -> None:
        if not self.ended:
            self.state = "unsubscribed"
            self._queue.put_nowait(None)

    def _changed(self, reported: dict[str, int]) -> None:
        """Yield what really changed (the server's first notice may repeat the reply)."""
        held = self.viewers or {}
        changed = {who: n for who, n in reported.items() if held.get(who, 0) != n}
        if not changed:
            return
        self.viewers = {**(self.viewers or {}), **changed}
        self.viewers = {who: n for who, n in self.viewers.items() if n}
        frame: Presence = {"type": "presence", "channel": self.channel, "changed": changed}
        self._queue.put_nowait(frame)
