"""Prometheus metrics of this worker process (`GET /metrics`)."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """Every metric in one registry, so tests and apps can hold their own."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        ProcessCollector(registry=r)  # this worker's CPU, memory and file descriptors
        self.worker = Gauge("switchboard_worker_pid", "Which worker answered", registry=r)
        self.worker.set_function(os.getpid)
        self.connections = Gauge(
            "switchboard_connections", "Open WebSocket and SSE connections", registry=r
        )
        self.subscriptions = Gauge("switchboard_subscriptions", "Live subscriptions", registry=r)
        self.channels = Gauge("switchboard_channels", "Channels held by this worker", registry=r)
        self.write_db_seconds = Histogram(
            "switchboard_write_db_seconds",
            "Time REST writes spend in their database transaction (commit included)",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.events_published = Counter(
            "switchboard_events_published", "Events published to the broker", registry=r
        )
        self.publish_failures = Counter(
            "switchboard_publish_failures", "Publishes the broker did not take", registry=r
        )
        self.events_forwarded = Counter(
            "switchboard_events_forwarded", "Events fanned out by this worker", registry=r
        )
        self.events_delivered = Counter(
            "switchboard_events_delivered", "Event frames handed to local subscriptions", registry=r
        )
        self.gap_fills = Counter(
            "switchboard_gap_fills", "Gaps in the broker stream filled from the store", registry=r
        )
        self.catch_up_fills = Counter(
            "switchboard_catch_up_fills",
            "Channels found behind the store by the catch-up poll (missed notifications)",
            registry=r,
        )
        self.slow_consumers = Counter(
            "switchboard_slow_consumer_disconnects", "Connections closed with 4008", registry=r
        )
        self.delivery_lag = Histogram(
            "switchboard_delivery_lag_seconds",
            "From an event's commit to its fan-out on this worker",
            buckets=LAG_BUCKETS,
            registry=r,
        )


METRICS = Metrics()
