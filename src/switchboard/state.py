"""The typed state that `lifespan` builds and the REST routes read.

State only: what a write does with it (commit, then publish) is `api.writes`. The
streaming transports read the `realtime` Node, not this.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.auth.authenticator import Authenticator
from switchboard.auth.limits import RateLimiter
from switchboard.auth.revocation import Revocations
from switchboard.broker import Broker
from switchboard.config import Settings
from switchboard.realtime.node import Node
from switchboard.realtime.publisher import Publisher
from switchboard.store import patch
from switchboard.store.db import Database


@dataclass(frozen=True, slots=True)
class AppState:
    """What the REST routes need; the streaming transports read only `realtime`."""

    settings: Settings
    db: Database
    broker: Broker
    publisher: Publisher
    auth: Authenticator
    limiter: RateLimiter
    revocations: Revocations
    realtime: Node
    recent: patch.Recent = field(default_factory=patch.Recent)
