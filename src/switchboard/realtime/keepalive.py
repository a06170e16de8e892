"""Every WebSocket keepalive ping of a worker on one timer.

uvicorn arms two timers per connection per ping (the next ping, then the pong deadline)
and frames each ping on its own: with thousands of idle connections, that is most of
what an idle worker does (bench/NOTES.md, "Many boards"). `Keepalive` keeps the
connections in the slots of a wheel that turns every `tick` (a tenth of the interval or
the timeout, at most a second): each turn pings the connections that are due, all with
the same frame, built once, and gives up on those whose pong is overdue. A ping goes out
within one tick of when it was due; a pong is waited for at least `timeout`.
"""

from __future__ import annotations

import asyncio
import math
import os
from typing import Protocol


class Pinged(Protocol):
    """A connection the wheel keeps alive (`wire.WireProtocol`)."""

    def ping_now(self, frame: bytes, payload: bytes) -> bool:
        """Write the ping `frame` (whose payload is `payload`); False if the connection is
        closing (then it is no longer kept)."""

    def pong_overdue(self) -> None:
        """No pong within the timeout: drop the connection."""


PING, PONG = True, False
"""What a connection waits for in its slot: its next ping, or the pong to the last one."""


class Keepalive:
    def __init__(self, interval: float, timeout: float | None) -> None:
        self.interval = interval
        self.timeout = timeout
        self.tick = min(1.0, interval / 10, (timeout or interval) / 10)
        self._slots: dict[int, dict[Pinged, bool]] = {}
        self._slot_of: dict[Pinged, int] = {}
        self._origin: float | None = None
        self._turned = 0
        """The last turn done."""
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._slot_of)

    def ping_in(self, connection: Pinged, delay: float) -> None:
        """Ping `connection` in `delay` seconds (or at the first turn after)."""
        self._put(connection, delay, PING)

    def forget(self, connection: Pinged) -> None:
        """`connection` is closed: no more pings."""
        turn = self._slot_of.pop(connection, None)
        if turn is not None:
            slot = self._slots[turn]
            del slot[connection]
            if not slot:
                del self._slots[turn]

    def _put(self, connection: Pinged, delay: float, waiting: bool) -> None:
        self.forget(connection)
        turn = self._turn_in(delay)
        self._slots.setdefault(turn, {})[connection] = waiting
        self._slot_of[connection] = turn
        if self._timer is None:
            self._arm()

    def _turn_in(self, delay: float) -> int:
        """The first turn at least `delay` seconds from now (never one already done)."""
        now = asyncio.get_running_loop().time()
        if self._origin is None:
            self._origin = now
        return max(self._turned + 1, math.ceil((now + delay - self._origin) / self.tick))

    def _arm(self) -> None:
        assert self._origin is not None
        at = self._origin + (self._turned + 1) * self.tick
        self._timer = asyncio.get_running_loop().call_at(at, self._turn)

    def _turn(self) -> None:
        """Do every turn that is due (more than one if the loop was late). Everything
        pinged in one turn waits in one slot: the pong's, or the next ping's."""
        assert self._origin is not None
        now = math.floor((asyncio.get_running_loop().time() - self._origin) / self.tick)
        payload = os.urandom(4)
        frame = b"\x89\x04" + payload  # an unmasked ping with a 4-byte payload (RFC 6455 §5.5.2)
        slot_of = self._slot_of
        wait, then = (self.timeout, PONG) if self.timeout is not None else (self.interval, PING)
        while self._turned < now:
            self._turned += 1
            due = self._slots.pop(self._turned, None)
            if not due:
                continue
            turn = self._turn_in(wait)
            slot = self._slots.setdefault(turn, {})
            for connection, waiting in due.items():
                del slot_of[connection]  # out of the wheel while it is called
                if waiting is PONG:
                    connection.pong_overdue()
                elif connection.ping_now(frame, payload):
                    slot[connection] = then
                    slot_of[connection] = turn
            if not slot:
                del self._slots[turn]
        self._timer = None
        if self._slots:
            self._arm()
