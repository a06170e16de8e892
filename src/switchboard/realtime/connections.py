"""The connections of this worker: one registry for opening, counting and closing them.

Every streaming client, whatever its transport, is opened here (`open`, an async
context manager that releases the connection however the client ends), counted
against its credential's limit, and found here again by whoever must close
connections: a revoked or expired credential (`revoke`), a stopping worker
(`drain`), any other predicate (`close_where`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

from switchboard.auth.principal import Principal
from switchboard.metrics import METRICS
from switchboard.realtime.codes import CloseCode
from switchboard.realtime.connection import Connection
from switchboard.realtime.transport import Transport


class TooManyConnections(Exception):
    """The credential (or, for anonymous clients, the address) holds as many connections
    on this worker as it may."""


def slot_of(principal: Principal, client_host: str | None) -> str:
    """Whose connection this is for the per-credential limit: anonymous ones count per address."""
    if principal.kind == "anonymous" and client_host is not None:
        return f"anonymous:{client_host}"
    return principal.identity


class Connections:
    """This worker's open connections, their per-credential counts, and whether it stops."""

    def __init__(self, *, per_credential: int, max_queue: int, max_bytes: int) -> None:
        self.per_credential = per_credential
        self.max_queue = max_queue
        self.max_bytes = max_bytes
        self.stopping = False
        self._open: set[Connection] = set()
        self._counts: Counter[str] = Counter()
        self._by_key: dict[str, set[Connection]] = {}
        """Open connections by the id of the key behind their credential (fixed for the
        connection's life: a new credential must come from the same key)."""

    @asynccontextmanager
    async def open(
        self, principal: Principal, client_host: str | None, transport: Transport
    ) -> AsyncIterator[Connection]:
        """A new connection for the length of the block; `TooManyConnections` when its
        credential already holds as many as it may. A worker that is stopping hands out
        connections already closed with 1012, so their clients go elsewhere."""
        slot = slot_of(principal, client_host)
        if self._counts[slot] >= self.per_credential:
            raise TooManyConnections(slot)
        connection = Connection(
            transport,
            max_queue=self.max_queue,
            max_bytes=self.max_bytes,
            principal=principal,
            slot=slot,
        )
        self._counts[slot] += 1
        self._open.add(connection)
        key_id = principal.key_id
        if key_id:
            self._by_key.setdefault(key_id, set()).add(connection)
        METRICS.connections.inc()
        if self.stopping:
            connection.close(CloseCode.SERVICE_RESTART)
        try:
            yield connection
        finally:
            connection.release()
            self._open.discard(connection)
            if key_id:
                holders = self._by_key[key_id]
                holders.discard(connection)
                if not holders:
                    del self._by_key[key_id]
            self._counts[slot] -= 1
            if self._counts[slot] <= 0:
                del self._counts[slot]
            METRICS.connections.dec()

    def close_where(self, predicate: Callable[[Connection], bool], code: int) -> None:
        """Close every open connection that `predicate` picks."""
        for connection in list(self._open):
            if predicate(connection):
                connection.close(code)

    def principals(self) -> Iterator[Principal]:
        """The credentials open connections hold."""
        return (connection.principal for connection in list(self._open))

    def key_ids(self) -> list[str]:
        """The keys behind the open connections' credentials (for the revocation watch)."""
        return list(self._by_key)

    def revoke_key(self, key_id: str) -> None:
        """Close, with 4101, every connection whose credential comes from the revoked key
        `key_id`: its client must come back with a new credential."""
        for connection in list(self._by_key.get(key_id, ())):
            connection.close(CloseCode.UNAUTHORIZED)

    def drain(self) -> None:
        """The worker is stopping: close everything with 1012, now and from now on."""
        self.stopping = True
        self.close_where(lambda _: True, CloseCode.SERVICE_RESTART)
