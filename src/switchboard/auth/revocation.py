"""Revocation reaches every worker at once, and open connections too.

Revoking a key publishes its id on the `control:keys` channel: every worker
drops the key from its cache and closes the connections it authenticated
(close code 4101). In case that message is lost (Redis down), each worker also
re-checks the keys behind its open connections against the store every few seconds
(one query for the distinct keys, not a pass over the connections). A token's expiry
is each connection's own timer (`realtime.connection.Connection.principal`).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog

from switchboard.auth.authenticator import Authenticator
from switchboard.broker import Broker, BrokerUnavailable
from switchboard.shutdown import Background
from switchboard.store.db import Database
from switchboard.store.keys import revoked_among

log = structlog.get_logger(__name__)

CONTROL_CHANNEL = "control:keys"


class OpenCredentials(Protocol):
    """The keys this worker's connections hold (the realtime connection registry)."""

    def key_ids(self) -> list[str]: ...

    def revoke_key(self, key_id: str) -> None:
        """Close every connection whose credential comes from `key_id`."""


class Revocations:
    def __init__(
        self,
        authenticator: Authenticator,
        connections: OpenCredentials,
        broker: Broker,
        db: Database,
        *,
        interval: float,
    ) -> None:
        self.authenticator = authenticator
        self.connections = connections
        self.broker = broker
        self.db = db
        self.interval = interval
        self._loop = Background()

    def start(self) -> None:
        self._loop.start(self._watch(), "credential watch")

    async def close(self) -> None:
        await self._loop.stop()

    async def announce(self, key_id: str) -> None:
        """A key was revoked (committed): act here, and tell every other worker."""
        self._revoked(key_id)
        try:
            if not self.broker.healthy:  # no waiting on a dead connection: the watch covers it
                raise BrokerUnavailable("the broker is down")
            await self.broker.publish(CONTROL_CHANNEL, key_id.encode())
        except BrokerUnavailable:
            log.warning("revocation_not_broadcast", key_id=key_id)

    def on_message(self, payload: bytes) -> None:
        """Another worker revoked a key (a message on `CONTROL_CHANNEL`)."""
        self._revoked(payload.decode(errors="replace"))

    def _revoked(self, key_id: str) -> None:
        self.authenticator.forget(key_id)
        self.connections.revoke_key(key_id)

    async def _watch(self) -> None:
        while self._loop.running:
            await asyncio.sleep(self.interval)
            keyed = self.connections.key_ids()
            if not keyed:
                continue
            try:
                async with self.db.read() as session:
                    revoked = await revoked_among(session, sorted(keyed))
            except Exception as exc:
                log.warning("credential_watch_failed", error=repr(exc))
                continue
            for key_id in revoked:
                self._revoked(key_id)
