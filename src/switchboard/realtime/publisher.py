"""After commit, ring the doorbell: publish each event on its board's channel."""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from switchboard.broker import Broker, BrokerUnavailable
from switchboard.metrics import METRICS
from switchboard.names import channel_name
from switchboard.realtime.protocol import stored_event_frame
from switchboard.store.models import Event

log = structlog.get_logger(__name__)


class Publisher:
    """Publishes committed events; a broker outage never fails the write that made them.

    An event the broker did not take is still in the store: every worker's hub
    reads the store after its broker connection comes back, and fills any gap
    it sees in a channel, so subscribers still get it, in order.
    """

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    async def publish(self, events: Iterable[tuple[str, Event]]) -> None:
        """Notify every worker; skipped while the broker is down (a write must not wait on
        a dead connection: the hubs' store poll, faster while the broker is down,
        delivers what was not published)."""
        events = list(events)
        if not self.broker.healthy:
            METRICS.publish_failures.inc(len(events))
            return
        for slug, event in events:
            try:
                await self.broker.publish(channel_name(slug), stored_event_frame(slug, event))
            except BrokerUnavailable:
                METRICS.publish_failures.inc()
                log.warning("publish_failed", channel=channel_name(slug), seq=event.seq)
            else:
                METRICS.events_published.inc()
