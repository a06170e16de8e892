"""Broker adapters, chosen by URL scheme: `memory://` or `redis://`."""

from __future__ import annotations

from switchboard.broker.base import Broker, BrokerListener, BrokerUnavailable


def create_broker(url: str, *, prefix: str = "") -> Broker:
    """Build the broker for `url`; nothing connects until `Broker.connect`."""
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        from switchboard.broker.memory import MemoryBroker

        return MemoryBroker()
    if scheme in ("redis", "rediss", "unix"):
        from switchboard.broker.redis import RedisBroker

        return RedisBroker(url, key_prefix=prefix)
    raise ValueError(f"unsupported broker URL scheme {scheme!r} (use memory:// or redis://)")


__all__ = ["Broker", "BrokerListener", "BrokerUnavailable", "create_broker"]
