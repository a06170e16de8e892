"""The realtime layer of one worker, as its transports see it.

The lifespan builds one `Node` from the hub, the store, presence and the
connection registry; the WebSocket endpoint and the SSE stream read it and
nothing else, so neither reaches into the rest of the application's state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from switchboard.auth.principal import Principal
from switchboard.config import Settings
from switchboard.realtime.connection import Connection
from switchboard.realtime.connections import Connections
from switchboard.realtime.hub import Hub
from switchboard.realtime.presence import Presence
from switchboard.realtime.subscriber import Subscriber
from switchboard.store.db import Database

Authenticate = Callable[[str | None], Awaitable[Principal]]
"""The credential presented (or None) → who is connecting; raises `Unauthorized`."""


@dataclass(frozen=True, slots=True)
class Node:
    settings: Settings
    db: Database
    hub: Hub
    presence: Presence
    connections: Connections
    authenticate: Authenticate

    def subscriber(self, connection: Connection) -> Subscriber:
        """`connection`'s subscriptions (SSE's; the WebSocket `Handler` extends them)."""
        return Subscriber(
            connection, hub=self.hub, db=self.db, presence=self.presence, settings=self.settings
        )
