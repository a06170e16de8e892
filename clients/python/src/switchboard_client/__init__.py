"""The Python client for a Switchboard server: `Client` (sync) and `AsyncClient` (asyncio).

    from switchboard_client import Client

    with Client("http://127.0.0.1:8000", token="sbk_…") as sb:
        sb.set("ops", "cpu", 87)
        for frame in sb.watch("ops"):
            print(frame["type"], frame["seq"])

Nothing connects until a method is called. docs/python-client.md has the whole API.
"""

from switchboard_client.aio import AsyncClient, Point
from switchboard_client.errors import (
    BadRequest,
    Conflict,
    ConnectionClosed,
    ConnectionFailed,
    Forbidden,
    HistoryExpired,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    RateLimited,
    SwitchboardError,
    Unauthorized,
    Unavailable,
    ValidationError,
)
from switchboard_client.live import Live
from switchboard_client.retry import NO_RETRY, RetryPolicy
from switchboard_client.states import State, StateChange
from switchboard_client.subscription import LiveFrame, Presence, Subscription, SubscriptionState
from switchboard_client.sync import Client
from switchboard_client.sync_live import SyncLive, SyncSubscription
from switchboard_client.tokens import TokenSource
from switchboard_client.types import (
    Board,
    BoardPage,
    BoardWithWidgets,
    EventPage,
    Key,
    LayoutEntry,
    NewKey,
    Role,
    Token,
    TokenRole,
    Widget,
)
from switchboard_client.watch import Event, Frame, Snapshot

__all__ = [
    "NO_RETRY",
    "AsyncClient",
    "BadRequest",
    "Board",
    "BoardPage",
    "BoardWithWidgets",
    "Client",
    "Conflict",
    "ConnectionClosed",
    "ConnectionFailed",
    "Event",
    "EventPage",
    "Forbidden",
    "Frame",
    "HistoryExpired",
    "Key",
    "LayoutEntry",
    "Live",
    "LiveFrame",
    "NewKey",
    "NotFound",
    "PayloadTooLarge",
    "Point",
    "PreconditionFailed",
    "Presence",
    "RateLimited",
    "RetryPolicy",
    "Role",
    "Snapshot",
    "State",
    "StateChange",
    "Subscription",
    "SubscriptionState",
    "SwitchboardError",
    "SyncLive",
    "SyncSubscription",
    "Token",
    "TokenRole",
    "TokenSource",
    "Unauthorized",
    "Unavailable",
    "ValidationError",
    "Widget",
]
