"""Presence: who is watching each board, on every worker, with joins and leaves coalesced.

Each worker counts its own subscriptions per channel and identity (`key:…`,
`token:…`, `anonymous`), writes those counts to a shared store at most once
per `interval` (all changed channels in one round trip), and names them in one message
on the broker's `control:presence` channel, so that the other workers holding them read
their merged counts on their next tick. A worker reads only the channels that changed:
its cost follows joins and leaves, not the number of boards it holds (bench/NOTES.md,
"Many boards").

Workers stay alive in presence with a heartbeat (one entry per worker, with a TTL):
a worker that dies without cleaning up drops out within `ttl`, and when one does, the
others re-read all they hold. When the broker reports channels re-subscribed after an
outage, each worker writes its counts again (a restarted Redis has none) and reads them:
messages missed meanwhile are made up for. Each channel's subscribers get
one `presence` frame per tick with what changed, so a thousand viewers arriving at
once make one frame per second, not a thousand.
"""

from __future__ import annotations

import abc
import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
import structlog
from redis.exceptions import RedisError

from switchboard.broker import Broker, BrokerUnavailable, RedisClient
from switchboard.names import hash_tag
from switchboard.shutdown import Background

log = structlog.get_logger(__name__)

Counts = dict[str, int]


class PresenceStore(abc.ABC):
    """Where workers' counts meet."""

    @abc.abstractmethod
    async def write(self, counts: Mapping[str, Counts]) -> None:
        """Replace this worker's counts for each channel given (empty: this worker has no
        viewers there)."""

    @abc.abstractmethod
    async def alive(self) -> frozenset[str]:
        """This worker is alive: say so, and answer every live worker's id."""

    @abc.abstractmethod
    async def keep(self, channels: list[str]) -> None:
        """This worker still holds `channels`: keep their counts from expiring."""

    @abc.abstractmethod
    async def read(self, channels: list[str]) -> dict[str, Counts]:
        """The counts of every live worker, merged, per channel."""

    async def close(self) -> None:
        return None


class MemoryPresence(PresenceStore):
    """The embedded default: one process, so this worker's counts are everyone's."""

    def __init__(self) -> None:
        self._counts: dict[str, Counts] = {}

    async def write(self, counts: Mapping[str, Counts]) -> None:
        for channel, viewers in counts.items():
            if viewers:
                self._counts[channel] = dict(viewers)
            else:
                self._counts.pop(channel, None)

    async def alive(self) -> frozenset[str]:
        return frozenset()

    async def keep(self, channels: list[str]) -> None:
        return None

    async def read(self, channels: list[str]) -> dict[str, Counts]:
        return {c: dict(self._counts.get(c, {})) for c in channels}


KEEP = 3600
"""Seconds a channel's hash outlives its last write or `keep`: only the garbage of
workers that all died goes with it (readers skip a dead worker's fields anyway), so it is
long, and refreshed every `KEEP / 3` s rather than every tick."""


class RedisPresence(PresenceStore):
    """One hash per channel, field `<worker>|<identity>`; live workers in a sorted set
    scored by their expiry time. Fields of expired workers are ignored, then removed.

    On a cluster the channel's hash is in its board's slot (hash tag) and the workers' set
    in another: the pipelines that write and read many channels are split per node by the
    client."""

    def __init__(self, redis: RedisClient, prefix: str, ttl: float) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl
        self.worker = uuid.uuid4().hex[:12]
        self._written: dict[str, set[str]] = {}

    def _key(self, channel: str) -> str:
        return f"{self._prefix}presence:{hash_tag(channel)}"

    @property
    def _workers(self) -> str:
        return f"{self._prefix}presence:workers"

    async def write(self, counts: Mapping[str, Counts]) -> None:
        """One round trip for every channel: per channel, the new fields are set before
        the stale ones go, so a reader in between sees at worst the old viewers as well
        (as it would just before the write), never some of them missing."""
        written: dict[str, set[str]] = {}
        # Alive first: a reader takes the fields of a worker not in the set for a dead one's.
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._workers, {self.worker: time.time() + self._ttl})
            for channel, viewers in counts.items():
                fields: dict[Any, Any] = {f"{self.worker}|{i}": n for i, n in viewers.items()}
                previous = self._written.get(channel, set())
                stale = previous - set(fields)
                written[channel] = set(fields)
                # A write that fails or is cancelled may still have landed: until Redis
                # confirms, both sets may be there, and the next write must delete either.
                self._remember(channel, previous | set(fields))
                if fields:
                    pipe.hset(self._key(channel), mapping=fields)
                    pipe.expire(self._key(channel), KEEP)
                if stale:
                    pipe.hdel(self._key(channel), *stale)
            await pipe.execute()
        for channel, fields_ in written.items():
            self._remember(channel, fields_)

    def _remember(self, channel: str, fields: set[str]) -> None:
        """The fields of ours that may be in `channel`'s hash (none: forget the channel)."""
        if fields:
            self._written[channel] = fields
        else:
            self._written.pop(channel, None)

    async def alive(self) -> frozenset[str]:
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._workers, {self.worker: now + self._ttl})
            pipe.zrangebyscore(self._workers, now, "+inf")
            _, live = await pipe.execute()
        return frozenset(w.decode() for w in live)

    async def keep(self, channels: list[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for channel in channels:
                pipe.expire(self._key(channel), KEEP)
            await pipe.execute()

    async def read(self, channels: list[str]) -> dict[str, Counts]:
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(self._workers, now, "+inf")
            for channel in channels:
                pipe.hgetall(self._key(channel))
            live_raw, *hashes = await pipe.execute()
        live = {w.decode() for w in live_raw}
        merged: dict[str, Counts] = {}
        dead: dict[str, list[bytes]] = {}
        for channel, fields in zip(channels, hashes, strict=True):
            counts: Counter[str] = Counter()
            for field, value in fields.items():
                worker, _, identity = field.decode().partition("|")
                if worker in live:
                    counts[identity] += int(value)
                else:
                    dead.setdefault(channel, []).append(field)
            merged[channel] = {identity: n for identity, n in counts.items() if n > 0}
        if dead:  # a crashed worker's leftovers
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel, fields_ in dead.items():
                    pipe.hdel(self._key(channel), *fields_)
                pipe.zremrangebyscore(self._workers, "-inf", now)
                await pipe.execute()
        return merged

    async def close(self) -> None:
        try:  # leave cleanly: our viewers are gone now, not after the TTL
            async with self._redis.pipeline(transaction=False) as pipe:
                for channel, fields in self._written.items():
                    pipe.hdel(self._key(channel), *fields)
                pipe.zrem(self._workers, self.worker)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("presence_cleanup_failed", error=repr(exc))


def create_presence(redis: RedisClient | None, prefix: str, ttl: float) -> PresenceStore:
    """Shared through the worker's Redis when there is one, else in this process."""
    if redis is not None:
        return RedisPresence(redis, prefix, ttl)
    return MemoryPresence()


Notify = Callable[[str, str, str | None], None]
"""How a presence frame reaches a channel's local subscribers: `notify(channel, frame,
public_frame)`, the second for anonymous viewers (None: nothing changed for them)."""

ANONYMOUS_IDENTITY = "anonymous"
SIGNED_IN = "authenticated"


def public_counts(counts: Counts) -> Counts:
    """What an anonymous viewer may know: how many watch, not which keys they hold."""
    anonymous = counts.get(ANONYMOUS_IDENTITY, 0)
    signed_in = sum(n for identity, n in counts.items() if identity != ANONYMOUS_IDENTITY)
    return {k: n for k, n in ((ANONYMOUS_IDENTITY, anonymous), (SIGNED_IN, signed_in)) if n}


def changes(before: Counts, after: Counts) -> Counts:
    """Identities whose count changed, with 0 for those gone."""
    changed = {i: n for i, n in after.items() if before.get(i) != n}
    changed.update({i: 0 for i in before if i not in after})
    return changed


PRESENCE_CHANNEL = "control:presence"
"""Where workers name the channels whose counts they changed: the sender's id, then the
channels, newline-separated."""
RING_BATCH = 500
"""Channels named per message at most (a worker that just took 10,000 viewers sends 20)."""


class Presence:
    """This worker's viewers, and the loop that shares them and reports changes."""

    def __init__(
        self,
        store: PresenceStore,
        notify: Notify,
        *,
        interval: float,
        broker: Broker | None = None,
    ):
        self.store = store
        self.notify = notify
        self.broker = broker
        self.interval = interval
        self.id = uuid.uuid4().hex[:12]
        """Heads this worker's `PRESENCE_CHANNEL` messages: its own come back, and are
        skipped (what it wrote is read on its next tick already)."""
        self.local: dict[str, Counter[str]] = {}
        self._dirty: set[str] = set()
        """Changed here, not yet written."""
        self._unrung: set[str] = set()
        """Written, the other workers not yet told (the broker was down)."""
        self._stale: set[str] = set()
        """Changed somewhere: read on the next tick."""
        self._flushing = asyncio.Lock()
        self._seen: dict[str, Counts] = {}
        self._workers: frozenset[str] = frozenset()
        self._kept = time.monotonic()
        self._loop = Background()

    def join(self, channel: str, identity: str) -> None:
        self.local.setdefault(channel, Counter())[identity] += 1
        self._dirty.add(channel)

    def leave(self, channel: str, identity: str) -> None:
        counts = self.local.get(channel)
        if counts is None:
            return
        counts[identity] -= 1
        if counts[identity] <= 0:
            del counts[identity]
        if not counts:
            del self.local[channel]
            self._seen.pop(channel, None)
        self._dirty.add(channel)

    def on_message(self, payload: bytes) -> None:
        """Another worker changed the counts of the channels named (`PRESENCE_CHANNEL`)."""
        sender, *channels = payload.decode(errors="replace").split("\n")
        if sender != self.id:
            self._stale.update(c for c in channels if c in self.local)

    def resubscribed(self, channels: Iterable[str]) -> None:
        """The broker is back after an outage: messages may have been lost, and a restarted
        Redis has lost every count. Write ours again, and read them all."""
        names = set(channels)
        held = list(self.local) if PRESENCE_CHANNEL in names else names & self.local.keys()
        self._dirty.update(held)
        self._stale.update(held)

    async def who(self, channel: str) -> Counts:
        """Everyone watching `channel` now, on every worker."""
        await self._flush()
        return (await self.store.read([channel]))[channel]

    def start(self) -> None:
        self._loop.start(self._run(), "presence")

    async def close(self) -> None:
        await self._loop.stop()
        await self.store.close()

    async def _flush(self) -> None:
        """Write every dirty channel, one flush at a time: two interleaved flushes (a
        request's `who()` and the loop) could land an older count after a newer one."""
        async with self._flushing:
            if not self._dirty:
                return
            dirty, self._dirty = self._dirty, set()  # a join or leave meanwhile: next flush
            try:
                await self.store.write({c: dict(self.local.get(c, {})) for c in dirty})
            except BaseException:
                # Failed or cancelled: written again next time, not lost.
                self._dirty |= dirty
                raise
            self._unrung |= dirty
            self._stale.update(c for c in dirty if c in self.local)

    async def _ring(self) -> None:
        """Name the channels this worker changed to the others; if the broker cannot take
        them now, they are named next tick (workers that missed a message re-read
        everything when they re-subscribe)."""
        if self.broker is None:
            self._unrung.clear()
            return
        while self._unrung and self.broker.healthy:
            batch = [self._unrung.pop() for _ in range(min(RING_BATCH, len(self._unrung)))]
            try:
                await self.broker.publish(PRESENCE_CHANNEL, "\n".join([self.id, *batch]).encode())
            except BaseException as exc:
                self._unrung.update(batch)
                if isinstance(exc, BrokerUnavailable):
                    return
                raise

    async def _run(self) -> None:
        while self._loop.running:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except (RedisError, OSError) as exc:
                log.warning("presence_unavailable", error=repr(exc))

    async def tick(self) -> None:
        """What the loop does every interval: write and name what changed here, stay
        alive, keep the hashes, read and report what changed anywhere."""
        await self._flush()
        await self._ring()
        await self._heartbeat()
        if time.monotonic() - self._kept > KEEP / 3:
            await self.store.keep(list(self.local))
            self._kept = time.monotonic()
        await self._report()

    async def _heartbeat(self) -> None:
        """Stay alive; a worker gone since the last tick takes its viewers with it, so
        everything held here is read again."""
        workers = await self.store.alive()
        if self._workers - workers:
            self._stale.update(self.local)
        self._workers = workers

    async def _report(self) -> None:
        """One frame per stale channel whose viewers changed since the last report."""
        channels = [c for c in self._stale if c in self.local]
        self._stale.clear()
        if not channels:
            return
        try:
            merged = await self.store.read(channels)
        except BaseException:
            self._stale.update(channels)
            raise
        for channel, counts in merged.items():
            if channel not in self.local:  # left while it was read
                continue
            before = self._seen.get(channel, {})  # a channel new here: everyone is news
            self._seen[channel] = counts
            if before == counts:
                continue
            frame = {"type": "presence", "channel": channel, "changed": changes(before, counts)}
            public = changes(public_counts(before), public_counts(counts))
            public_frame = {"type": "presence", "channel": channel, "changed": public}
            self.notify(
                channel,
                orjson.dumps(frame).decode(),
                orjson.dumps(public_frame).decode() if public else None,
            )
