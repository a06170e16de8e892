"""The broker contract: a pub/sub doorbell between workers.

The broker carries notifications only; the store is the source of truth. A
message lost by the broker is recovered by the hub from the event table, so a
broker must never block a writer for long and never buffer without bound.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from typing import Protocol


class BrokerUnavailable(Exception):
    """Raised by `publish` or `subscribe` when the broker cannot be reached right now."""


class BrokerListener(Protocol):
    """What a broker calls back into (the hub). Both are called on the event loop."""

    def on_message(self, channel: str, payload: bytes) -> None:
        """A message arrived on a channel this worker is subscribed to. Must not block."""

    def on_resubscribed(self, channels: Iterable[str]) -> None:
        """The connection was lost and is back: messages on these channels may have been missed."""


class Broker(abc.ABC):
    """One connection per worker, one subscription per channel, whatever the number of clients.

    Subscriptions are reference-free at this level: the hub subscribes a channel
    once, when its first local client arrives, and unsubscribes it when the last
    one leaves.
    """

    @abc.abstractmethod
    async def connect(self, listener: BrokerListener) -> None:
        """Start delivering to `listener`; if the broker is down, keep retrying (never fail)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop delivering and release every connection and task."""

    @abc.abstractmethod
    async def publish(self, channel: str, payload: bytes) -> None:
        """Send `payload` to every worker subscribed to `channel`; raise `BrokerUnavailable`."""

    @abc.abstractmethod
    async def subscribe(self, channel: str) -> None:
        """Return once messages on `channel` are being delivered.

        If the broker is down, raise `BrokerUnavailable`: the channel stays
        registered, is subscribed again on reconnect, and `on_resubscribed`
        reports it then.
        """

    @abc.abstractmethod
    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering `channel`. Never raises for a broker outage."""

    @property
    @abc.abstractmethod
    def healthy(self) -> bool:
        """Whether the broker is connected right now (for `/readyz`)."""
