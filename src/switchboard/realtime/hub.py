"""The hub: this worker's channels and their local subscribers.

One broker subscription per channel however many clients watch it. Each
channel has one pump task that turns what the broker delivers into a gapless,
duplicate-free, seq-ordered stream: a duplicate is dropped, and a gap (a lost
or reordered notification) is filled from the event table before forwarding.
The store is the truth; the broker only says "something happened".

Under the broker, a catch-up poll asks the store which boards were written since its
last poll (a change clock, `store.events.changed_since`: its cost follows the writes,
not the boards held; faster while the broker is down) and fills any channel that is
behind: a notification that was never published (Redis down at commit time, a
partitioned or crashed publisher) still reaches every subscriber, late but in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import orjson
import structlog

from switchboard.broker import Broker, BrokerUnavailable
from switchboard.errors import NotFound
from switchboard.metrics import METRICS
from switchboard.names import channel_name, slug_of
from switchboard.realtime.framing import MAX_WRITE, text_frame
from switchboard.realtime.protocol import stored_event_frame
from switchboard.shutdown import Background
from switchboard.store.db import Database
from switchboard.store.events import boards_ahead, changed_since, find_board, load_events

log = structlog.get_logger(__name__)

_RESYNC = b""  # inbox marker: "the broker may have missed messages, read the store"
FILL_PAGE = 500
FANOUT_SLICE = 200
"""Sinks served between two turns of the event loop (about 2 ms of socket writes here)."""
RUN_MAX_EVENTS = 64
RUN_MAX_BYTES = MAX_WRITE
"""A run ends at whichever comes first (`framing.MAX_WRITE`)."""


@dataclass(frozen=True, slots=True)
class BoardChange:
    """An event that changes who may read the board (`board.updated`, `.created`,
    `.deleted`): every subscription re-checks its access before it passes the event on."""

    slug: str
    public: bool
    live: bool

    @classmethod
    def of(cls, slug: str, payload: bytes) -> BoardChange | None:
        """The change an event frame makes, if any. The substring test keeps the parse off
        the path of ordinary events (a match inside a value only costs the parse)."""
        if b'"event":"board.' not in payload:
            return None
        frame = orjson.loads(payload)
        name, data = frame.get("event"), frame.get("data") or {}
        if name == "board.deleted":
            return cls(slug, public=False, live=False)
        if name in ("board.updated", "board.created"):
            return cls(slug, public=bool(data.get("public")), live=True)
        return None


Delivery = tuple[int, str, bytes, BoardChange | None]
"""One event as a channel forwards it: its seq, its frame as text (queued paths), the same
frame already framed for WebSocket (`realtime/framing.py`: the fast path), and the change it
makes to who may read the board, if any."""


@dataclass(frozen=True, slots=True)
class Run:
    """Consecutive events of one channel, handed to every sink together. `wire` is all of
    their frames back to back: a connection that keeps up takes the run with one write,
    one `send()` however many events arrived together. Runs form by themselves under
    load (what the broker delivered while the pump was busy), never by waiting: an event
    arriving alone is a run of one, sent at once."""

    events: tuple[Delivery, ...]
    wire: bytes
    plain: bool
    """No event of the run changes who may read the board (the common case): a
    subscription that is live and in step passes it on whole."""
    first: int
    last: int
    """The seqs of its first and last events (read once per sink: fields, not properties)."""

    @classmethod
    def of(cls, events: list[Delivery]) -> Run:
        wire = events[0][2] if len(events) == 1 else b"".join(event[2] for event in events)
        plain = all(event[3] is None for event in events)
        return cls(tuple(events), wire, plain, events[0][0], events[-1][0])


class Sink(Protocol):
    """Where a channel forwards to: one subscription of one connection."""

    def deliver(self, run: Run) -> None:
        """Called in seq order, without gaps between runs, from the channel's pump. Must
        not block."""

    def notice(self, frame: str, public_frame: str | None) -> None:
        """A frame outside the event stream (presence), and its version for anonymous
        viewers (None: nothing for them). Must not block."""


class PresenceListener(Protocol):
    """Told of re-subscriptions too (`Presence`: a restarted Redis lost every count)."""

    def resubscribed(self, channels: Iterable[str]) -> None: ...


class ChannelUnavailable(Exception):
    """Raised by `Hub.join` when the channel's starting point cannot be read from the store."""


class Channel:
    """One board's stream on this worker."""

    def __init__(self, hub: Hub, name: str) -> None:
        self.hub = hub
        self.name = name
        self.slug = slug_of(name)
        self.sinks: set[Sink] = set()
        self.last_seq = 0
        self.board_id: int | None = None
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._run_events: list[Delivery] = []
        """Forwarded but not yet handed to the sinks: handed over (`_flush`) before any
        other await, so a sink that joins meanwhile, whose snapshot already holds these
        events, misses nothing."""
        self._run_bytes = 0
        self._run_at: list[float] = []
        self.fill_requested = False
        self.closed = False
        """Set before the task is cancelled: the pump stops even if a cancellation is lost."""
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._run(), name=f"channel {name}")

    async def _run(self) -> None:
        # The channel serves every subscriber: not the request that opened it (nor its id).
        structlog.contextvars.clear_contextvars()
        try:
            await self._open()
        except Exception as exc:
            log.warning("channel_open_failed", channel=self.name, error=repr(exc))
            self.ready.set_exception(ChannelUnavailable(self.name))
            self.hub._drop(self)
            return
        self.ready.set_result(None)
        while not self.closed:
            payload = await self.inbox.get()
            # Everything the broker has delivered meanwhile goes out as one run.
            while True:
                await self._take(payload)
                if self.inbox.empty():
                    break
                payload = self.inbox.get_nowait()
            await self._flush()

    async def _take(self, payload: bytes) -> None:
        try:
            if payload is _RESYNC:
                self.fill_requested = False
                await self._fill(None)
            else:
                await self._receive(payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A store hiccup while filling: retry from the store on the next message.
            log.warning("channel_fill_failed", channel=self.name, error=repr(exc))
            await self._flush()
            await asyncio.sleep(0.5)
            self.request_fill()

    def request_fill(self) -> None:
        """Read the store for events after `last_seq` (once, however often asked before)."""
        if not self.fill_requested:
            self.fill_requested = True
            self.inbox.put_nowait(_RESYNC)

    async def _open(self) -> None:
        """Subscribe first, then read the starting seq, so nothing falls in between."""
        try:
            await self.hub.broker.subscribe(self.name)
        except BrokerUnavailable:
            log.warning("broker_subscribe_failed", channel=self.name)
            # The broker re-subscribes on reconnect and reports it; the store covers the gap.
        async with self.hub.db.read() as session:
            try:
                board = await find_board(session, self.slug, deleted=True)
            except NotFound:
                return  # no board yet: starts at 0
            self.board_id, self.last_seq = board.id, board.seq

    async def _receive(self, payload: bytes) -> None:
        frame = orjson.loads(payload)
        seq = frame["seq"]
        if seq <= self.last_seq:
            return
        if seq > self.last_seq + 1:
            METRICS.gap_fills.inc()
            await self._fill(seq - 1)
            if seq <= self.last_seq:
                return
        if self._forward(seq, payload, datetime.fromisoformat(frame["at"])):
            await self._flush()

    async def _fill(self, up_to: int | None) -> None:
        """Forward stored events after `last_seq` (up to `up_to`, or all) in order."""
        while up_to is None or self.last_seq < up_to:
            await self._flush()  # what came before the gap goes out before the store is read
            async with self.hub.db.read() as session:
                if self.board_id is None:
                    try:
                        self.board_id = (await find_board(session, self.slug, deleted=True)).id
                    except NotFound:
                        return
                events = await load_events(
                    session, self.board_id, self.last_seq, up_to=up_to, limit=FILL_PAGE
                )
            for event in events:
                if self._forward(event.seq, stored_event_frame(self.slug, event), event.at):
                    await self._flush()
            if len(events) < FILL_PAGE:
                return

    def _forward(self, seq: int, payload: bytes, at: datetime) -> bool:
        """Add one event to the run being built: framed once here, as text (queued
        paths) and as a ready WebSocket frame (fast path), for every sink. `at` is the
        event's timestamp, for the delivery lag. True when the run is full."""
        self.last_seq = seq
        wire = text_frame(payload)
        self._run_events.append((seq, payload.decode(), wire, BoardChange.of(self.slug, payload)))
        self._run_at.append(at.timestamp())
        self._run_bytes += len(wire)
        return len(self._run_events) >= RUN_MAX_EVENTS or self._run_bytes >= RUN_MAX_BYTES

    async def _flush(self) -> None:
        """Hand the run built so far to every local sink, letting the event loop run
        between slices of `FANOUT_SLICE` sinks: a board with thousands of subscribers on
        this worker would otherwise hold the loop for tens of milliseconds per event,
        stalling every other board's delivery and every request the worker serves
        (bench/NOTES.md, the 5,000-subscriber knee). A sink that left meanwhile is
        skipped; one that joined starts from a snapshot that holds this run."""
        events = self._run_events
        if not events:
            return
        stamps = self._run_at
        self._run_events, self._run_at, self._run_bytes = [], [], 0
        run = Run.of(events)
        sinks = tuple(self.sinks)
        delivered = 0
        for start in range(0, len(sinks), FANOUT_SLICE):
            chunk = sinks[start : start + FANOUT_SLICE]
            if start:  # only after the loop ran can a sink have left
                await asyncio.sleep(0)
                chunk = tuple(sink for sink in chunk if sink in self.sinks)
            for sink in chunk:
                sink.deliver(run)
            delivered += len(chunk)
        # Counted once per run: a metric lock per delivery costs.
        METRICS.events_delivered.inc(delivered * len(events))
        METRICS.events_forwarded.inc(len(events))
        now = time.time()
        for at in stamps:
            # Clocks of two hosts may disagree: a negative lag would corrupt the histogram.
            METRICS.delivery_lag.observe(max(0.0, now - at))


class Hub:
    """Owns this worker's channels; the broker's listener."""

    def __init__(
        self,
        broker: Broker,
        db: Database,
        *,
        catchup_interval: float = 2.0,
        degraded_interval: float = 0.25,
    ) -> None:
        self.broker = broker
        self.db = db
        self.channels: dict[str, Channel] = {}
        self._closing: dict[str, asyncio.Task[None]] = {}
        self.catchup_interval = catchup_interval
        self.degraded_interval = degraded_interval
        self._poller = Background()
        self._broker_seen = False
        self._mark: int | None = None
        """Where the store's change clock stood at the last catch-up poll."""
        self._controls: dict[str, Callable[[bytes], None]] = {}
        """Handlers for non-board channels (e.g. key revocations), by channel name."""
        self.presence: PresenceListener | None = None
        """Told of every re-subscription (`realtime/presence.py`)."""

    @property
    def ready(self) -> bool:
        """Whether to take subscribers: the broker has been reached since this worker started
        (later outages are covered by the store poll, so they do not un-ready it)."""
        if not self._broker_seen and self.broker.healthy:
            self._broker_seen = True
        return self._broker_seen

    def start(self) -> None:
        self._poller.start(self._catch_up(), "hub catch-up")

    async def listen(self, channel: str, handler: Callable[[bytes], None]) -> None:
        """Pass every message on a non-board `channel` (key revocations) to `handler`.
        If the broker is down now, the channel is subscribed when it comes back."""
        self._controls[channel] = handler
        with contextlib.suppress(BrokerUnavailable):
            await self.broker.subscribe(channel)

    async def _catch_up(self) -> None:
        """The safety net under the broker: fill channels whose notifications never came."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while self._poller.running:
            # Woken every degraded interval, so a broker that fails mid-interval switches
            # the poll to its fast pace at once, not after the healthy interval.
            await asyncio.sleep(min(self.catchup_interval, self.degraded_interval))
            if self.broker.healthy and loop.time() - last < self.catchup_interval:
                continue
            last = loop.time()
            try:
                behind = await self._behind()
            except Exception as exc:
                log.warning("catch_up_failed", error=repr(exc))
                continue
            for channel in behind:
                METRICS.catch_up_fills.inc()
                channel.request_fill()

    async def _behind(self) -> list[Channel]:
        """The channels whose boards the store has past what they forwarded (or that are
        still opening): those written since the last poll (`changed_since`). With no mark
        yet (the first poll), or a store whose clock went back (another database, restored
        from a dump: its transaction ids start again), every held board's head instead."""
        async with self.db.read() as session:
            mark, written = await changed_since(session, self._mark)
            if self._mark is None or mark < self._mark:
                held = list(self.channels.values())
                slugs = [c.slug for c in held]
                ahead = set(await boards_ahead(session, slugs, [c.last_seq for c in held]))
                self._mark = mark
                return [c for c in held if c.slug in ahead]
        self._mark = mark
        behind = []
        for slug, seq in written:
            channel = self.channels.get(channel_name(slug))
            if channel is not None and (channel.last_seq < seq or not channel.ready.done()):
                behind.append(channel)
        return behind

    async def join(self, name: str, sink: Sink) -> None:
        """Register `sink`, then wait until the channel's live stream has a starting point.

        Everything the channel forwards after this call starts reaches `sink`, so
        a snapshot read after `join` returns overlaps the live stream: the
        subscriber drops what its snapshot already holds.
        """
        while (closing := self._closing.get(name)) is not None:
            await asyncio.shield(closing)
        channel = self.channels.get(name)
        if channel is None:
            channel = self.channels[name] = Channel(self, name)
            METRICS.channels.inc()
        channel.sinks.add(sink)
        try:
            await asyncio.shield(channel.ready)
        except BaseException:
            self.leave(name, sink)
            raise

    def leave(self, name: str, sink: Sink) -> None:
        """Unregister `sink`; the last one out closes the channel and its broker subscription."""
        channel = self.channels.get(name)
        if channel is None or sink not in channel.sinks:
            return
        channel.sinks.discard(sink)
        if not channel.sinks:
            self._drop(channel)

    def _drop(self, channel: Channel) -> None:
        if self.channels.get(channel.name) is not channel:
            return
        del self.channels[channel.name]
        METRICS.channels.dec()
        self._closing[channel.name] = asyncio.create_task(self._close(channel))

    async def _close(self, channel: Channel) -> None:
        channel.closed = True
        try:
            if channel.task is not asyncio.current_task():
                channel.task.cancel()
            await self.broker.unsubscribe(channel.name)
        finally:
            del self._closing[channel.name]

    async def close(self) -> None:
        """Stop every channel (at shutdown)."""
        await self._poller.stop()
        for channel in list(self.channels.values()):
            channel.sinks.clear()
            self._drop(channel)
        await asyncio.gather(*self._closing.values(), return_exceptions=True)

    def notify(self, name: str, frame: str, public_frame: str | None) -> None:
        """Send an out-of-stream frame (encoded once) to every local subscriber of `name`."""
        channel = self.channels.get(name)
        if channel is not None:
            for sink in tuple(channel.sinks):
                sink.notice(frame, public_frame)

    # BrokerListener
    def on_message(self, channel: str, payload: bytes) -> None:
        control = self._controls.get(channel)
        if control is not None:
            control(payload)
            return
        target = self.channels.get(channel)
        if target is not None:
            target.inbox.put_nowait(payload)

    def on_resubscribed(self, channels: Iterable[str]) -> None:
        channels = list(channels)
        for name in channels:
            target = self.channels.get(name)
            if target is not None:
                target.request_fill()
        if self.presence is not None:
            self.presence.resubscribed(channels)
