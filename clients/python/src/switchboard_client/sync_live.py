"""`Client.connect()`: the live connection for plain synchronous code.

The `Live` connection runs on the `Client`'s private loop, as everything else does;
these wrappers only wait for it. A subscription is a plain iterator there.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from types import TracebackType
from typing import TYPE_CHECKING

from switchboard_client.errors import SwitchboardError
from switchboard_client.live import Live
from switchboard_client.states import State
from switchboard_client.subscription import LiveFrame, Subscription, SubscriptionState

if TYPE_CHECKING:
    from switchboard_client.sync import Client


class SyncLive:
    """`with client.connect() as live:`, then `for frame in live.subscribe(board):`."""

    def __init__(self, client: Client, live: Live) -> None:
        self._client = client
        self._live = live

    def __enter__(self) -> SyncLive:
        self._client._run(self._live.__aenter__())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def state(self) -> State:
        return self._live.state

    def subscribe(self, board: str, *, since: int | None = None) -> SyncSubscription:
        """Watch `board` on this connection (see `Live.subscribe`)."""
        return SyncSubscription(
            self._client, self._client._run(self._live.subscribe(board, since=since))
        )

    def unsubscribe(self, board: str) -> None:
        self._client._run(self._live.unsubscribe(board))

    def close(self) -> None:
        """Close the connection; every subscription's iterator ends."""
        self._client._run(self._live.close())


class SyncSubscription:
    """A board on a `SyncLive` connection: a plain iterator of its frames."""

    def __init__(self, client: Client, subscription: Subscription) -> None:
        self._client = client
        self._sub = subscription

    def __iter__(self) -> Generator[LiveFrame, None, None]:
        return self._client._iterate(_frames(self._sub))

    @property
    def state(self) -> SubscriptionState:
        return self._sub.state

    @property
    def seq(self) -> int | None:
        return self._sub.seq

    @property
    def error(self) -> SwitchboardError | None:
        return self._sub.error

    @property
    def viewers(self) -> dict[str, int] | None:
        return self._sub.viewers

    def who(self) -> dict[str, int]:
        """Who watches the board now; from then on `Presence` frames in the iterator."""
        return self._client._run(self._sub.who())

    def unsubscribe(self) -> None:
        self._client._run(self._sub.unsubscribe())


async def _frames(subscription: Subscription) -> AsyncGenerator[LiveFrame, None]:
    async for frame in subscription:
        yield frame
