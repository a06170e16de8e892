"""Revocation reaches every worker at once, and open connections too.

Revoking a key publishes its id on the `control:keys` channel: every worker
drops the key from its cache and closes the connections it authenticated
(close code 4101). In case that message is lost (Redis down), each worker also
re-checks its open connections' keys against the store every few seconds, and
closes connections whose token has expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import structlog

from switchboard.auth.authenticator import Authenticator
from switchboard.broker import Broker, BrokerUnavailable
from switchboard.realtime.codes import CloseCode
from switchboard.realtime.connection import Connection
from switchboard.realtime.drain import Drain
from switchboard.realtime.hub import Hub
from switchboard.shutdown import Background
from switchboard.store.db import Database
from switchboard.store.keys import revoked_among

log = structlog.get_logger(__name__)

CONTROL_CHANNEL = "control:keys"


def _expired_before(now: float) -> Callable[[Connection], bool]:
    return lambda c: c.principal.expires_at is not None and c.principal.expires_at <= now


class Revocations:
    def __init__(
        self,
        authenticator: Authenticator,
        drain: Drain,
        broker: Broker,
        db: Database,
        *,
        interval: float,
    ) -> None:
        self.authenticator = authenticator
        self.drain = drain
        self.broker = broker
        self.db = db
        self.interval = interval
        self._loop = Background()

    async def start(self, hub: Hub) -> None:
        hub.controls[CONTROL_CHANNEL] = self._on_message
        with contextlib.suppress(BrokerUnavailable):  # subscribed again on reconnect
            await self.broker.subscribe(CONTROL_CHANNEL)
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

    def _on_message(self, payload: bytes) -> None:
        self._revoked(payload.decode(errors="replace"))

    def _revoked(self, key_id: str) -> None:
        self.authenticator.forget(key_id)
        self.drain.close_where(lambda c: c.principal.key_id == key_id, CloseCode.UNAUTHORIZED)

    async def _watch(self) -> None:
        while self._loop.running:
            await asyncio.sleep(self.interval)
            self.drain.close_where(_expired_before(time.time()), CloseCode.UNAUTHORIZED)
            keyed = {c.principal.key_id for c in self.drain.connections if c.principal.key_id}
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
