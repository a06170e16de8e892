"""Prometheus metrics (`GET /metrics`), of one worker or of all of them.

One worker (`switchboard serve`, the tests' in-process servers): every metric lives
in this process's registry, with this process's CPU and memory.

Several workers (`switchboard serve --workers N`): the command points
`PROMETHEUS_MULTIPROC_DIR` at a fresh directory before uvicorn spawns the workers,
and prometheus_client, which decides when it is imported, then keeps every value in
a per-process file there. A scrape, whichever worker answers it, merges the files of
all: counters and histograms are summed (a dead worker's counts included: they
happened), each gauge as its `multiprocess_mode` says. Per-process CPU and memory are
left out there (they would be the answering worker's alone).
"""

from __future__ import annotations

import contextlib
import os
import re

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
    multiprocess,
    values,
)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
HTTP_BUCKETS = (*LAG_BUCKETS, 10.0)
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")


def multiprocess_dir() -> str | None:
    """The shared directory if prometheus_client runs in multiprocess mode, else None.
    Asked of the value class it chose at import, not of the environment as it is now."""
    if not getattr(values.ValueClass, "_multiprocess", False):
        return None
    return os.environ[MULTIPROCESS_ENV]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of workers that are gone (`mark_process_dead`).

    uvicorn's supervisor has no hook for a worker's exit, so each scrape does this:
    a worker that crashed or was replaced must not keep its connections in the sum.
    Its counters and histograms stay. A dead worker is seen once the supervisor has
    reaped it (it checks twice a second)."""
    pids = {
        int(match.group(1))
        for name in os.listdir(directory)
        if (match := _LIVE_GAUGE_FILE.fullmatch(name))
    }
    for pid in pids:
        if not _alive(pid):
            with contextlib.suppress(FileNotFoundError):  # another worker's scrape was first
                multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


class Metrics:
    """Every metric in one registry, so tests and apps can hold their own."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.directory = multiprocess_dir()
        if self.directory is None:
            ProcessCollector(registry=r)  # this worker's CPU, memory and file descriptors
        self.worker = Gauge(
            "switchboard_worker_pid",
            "Process id of the worker that answered; with several workers, one sample "
            "per live worker (labelled pid)",
            registry=r,
            multiprocess_mode="liveall",
        )
        self.worker.set(os.getpid())
        self.connections = Gauge(
            "switchboard_connections",
            "Open WebSocket and SSE connections",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.subscriptions = Gauge(
            "switchboard_subscriptions",
            "Live subscriptions",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.channels = Gauge(
            "switchboard_channels",
            "Channels held, summed over workers (a board watched on two workers counts twice)",
            registry=r,
            multiprocess_mode="livesum",
        )
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
            "switchboard_events_forwarded",
            "Events fanned out, once per event per worker holding its channel",
            registry=r,
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
            "From an event's timestamp (taken in its write transaction) to its frame being "
            "handed to the connections of a worker; once per event per worker",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self.http_requests = Counter(
            "switchboard_http_requests",
            "HTTP requests answered, by method, route template and status (SSE streams "
            "included; WebSockets are not HTTP requests here)",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "switchboard_http_request_duration_seconds",
            "From a request's arrival to the end of its response, by method and route "
            "template (SSE streams left out)",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.http_in_flight = Gauge(
            "switchboard_http_requests_in_flight",
            "HTTP requests being answered (an SSE stream leaves once it starts)",
            registry=r,
            multiprocess_mode="livesum",
        )

    def exposition(self) -> bytes:
        """The text a scrape gets: this process's registry, or every worker's files merged."""
        if self.directory is None:
            return generate_latest(self.registry)
        forget_dead_workers(self.directory)
        merged = CollectorRegistry()  # fresh per scrape, as prometheus_client requires
        multiprocess.MultiProcessCollector(merged, path=self.directory)  # type: ignore[no-untyped-call]
        return generate_latest(merged)


METRICS = Metrics()
