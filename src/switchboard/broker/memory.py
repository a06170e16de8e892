"""In-process broker for the embedded default: one worker, no network."""

from __future__ import annotations

import asyncio

from switchboard.broker.base import Broker, BrokerListener


class MemoryBroker(Broker):
    """Delivers published messages to this process's listener on the next loop turn.

    Delivery is deferred (`call_soon` order is FIFO) so that a publisher never
    runs the fan-out inside its own call, exactly like a networked broker.
    """

    def __init__(self) -> None:
        self._listener: BrokerListener | None = None
        self._channels: set[str] = set()

    async def connect(self, listener: BrokerListener) -> None:
        self._listener = listener

    async def close(self) -> None:
        self._listener = None
        self._channels.clear()

    async def publish(self, channel: str, payload: bytes) -> None:
        listener = self._listener
        if listener is not None and channel in self._channels:
            asyncio.get_running_loop().call_soon(listener.on_message, channel, payload)

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    @property
    def healthy(self) -> bool:
        return self._listener is not None
