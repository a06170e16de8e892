"""The load generator's WebSocket clients, run in processes of their own: subscribers that
each hold many subscriptions, one board per connection (one board for all, or many boards),
and record every delivery's latency and order, and holders of idle connections. Spawned
processes import this module: it imports little."""

from __future__ import annotations

import asyncio
import base64
import functools
import os
import time
import typing
from typing import Any

import orjson
import uvloop
from websockets.asyncio.client import connect

from bench.env import AUTH, KEY
from bench.measure import raise_fd_limit


def subscriber_process(
    url: str, slugs: list[str], ready: Any, go: Any, results: Any, duration: float
) -> None:
    """Hold one connection per item of `slugs`, subscribed to that board; record every
    delivery's latency and order."""
    raise_fd_limit()
    results.put(uvloop.run(_subscribers(url, slugs, ready, go, duration)))


class Tally:
    """What one load-generator process's subscribers saw."""

    def __init__(self, count: int) -> None:
        self.latencies: list[float] = []
        self.first: dict[float, float] = {}
        """Per event (keyed by its send time), the latency of its first and last receipt
        in this process: the first is the write path and the broker's hop, last − first
        the fan-out's spread."""
        self.last_seen: dict[float, float] = {}
        self.deliveries = self.dup = self.ooo = 0
        self.starts: list[int] = [0] * count
        self.last: list[int] = [0] * count
        self.live = False
        self.ready = asyncio.get_running_loop().create_future()
        self.waiting = count


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 §5.3: every client frame is masked)."""
    mask = os.urandom(4)
    size = len(payload)
    head = bytes((0x80 | opcode,))
    if size < 126:
        head += bytes((0x80 | size,))
    else:
        head += bytes((0x80 | 126,)) + size.to_bytes(2, "big")
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


class LightSubscriber(asyncio.Protocol):
    """One subscription, held with as little client-side Python per delivery as it can
    take: the load generator runs on the server's two cores, and websockets' asyncio
    client spent ~27 µs of Python per message — 7 ms per event for 250 subscribers in
    one process, most of the latency the fan-out phases measured past the server
    (bench/NOTES.md). Server frames are unmasked and, from this server, unfragmented:
    a header, a length, the text."""

    def __init__(self, tally: Tally, index: int, request: bytes, subscribe: bytes) -> None:
        self.tally, self.index = tally, index
        self.request, self.subscribe = request, subscribe
        self.buffer = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TCP transport implements asyncio.Transport without subclassing it.
        self.transport = typing.cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"upgrade refused: {buffer[:200]!r}")
            self.upgraded = True
            buffer = buffer[end + 4 :]
            assert self.transport is not None
            self.transport.write(self.subscribe)
        offset, size = 0, len(buffer)
        while size - offset >= 2:
            opcode, length = buffer[offset] & 0x0F, buffer[offset + 1] & 0x7F
            start = offset + 2
            if length == 126:
                length, start = int.from_bytes(buffer[start : start + 2], "big"), start + 2
            elif length == 127:
                length, start = int.from_bytes(buffer[start : start + 8], "big"), start + 8
            if size < start + length:
                break
            payload = buffer[start : start + length]
            offset = start + length
            if opcode == 0x1:
                self._message(payload, now)
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(_client_frame(0xA, payload))
        self.buffer = buffer[offset:]

    def _message(self, payload: bytes, now: float) -> None:
        tally, i = self.tally, self.index
        frame = orjson.loads(payload)
        kind = frame.get("type")
        if kind == "snapshot":
            tally.starts[i] = tally.last[i] = frame["seq"]
            tally.waiting -= 1
            if not tally.waiting and not tally.ready.done():
                tally.ready.set_result(None)
            return
        if kind != "event" or not tally.live:
            return
        seq = frame["seq"]
        tally.deliveries += 1
        if seq <= tally.last[i]:
            tally.dup += 1
            return
        if seq != tally.last[i] + 1:
            tally.ooo += 1
        tally.last[i] = seq
        value = frame["data"].get("value")
        if isinstance(value, (int, float)) and value > 1e12:
            latency = now * 1000 - value
            tally.latencies.append(latency)
            tally.first.setdefault(value, latency)
            tally.last_seen[value] = latency


async def _subscribers(
    url: str, slugs: list[str], ready: Any, go: Any, duration: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    tally = Tally(len(slugs))
    host, port = url.removeprefix("ws://").split("/", 1)[0].split(":")
    request = (
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    ).encode()
    frames: dict[str, bytes] = {}
    transports = []
    for i, slug in enumerate(slugs):
        if slug not in frames:
            channel = {"type": "subscribe", "channel": f"board:{slug}"}
            frames[slug] = _client_frame(0x1, orjson.dumps(channel))
        transport, _ = await loop.create_connection(
            functools.partial(LightSubscriber, tally, i, request, frames[slug]), host, int(port)
        )
        transports.append(transport)
    # 20,000 subscriptions (10,000 boards x2) took 302 s on the busy 2-core machine.
    await asyncio.wait_for(tally.ready, 900)
    ready.release()
    await asyncio.to_thread(go.wait)
    cpu0 = time.process_time()
    tally.live = True
    await asyncio.sleep(duration)
    cpu = time.process_time() - cpu0
    for transport in transports:
        transport.close()
    return {
        "latencies": tally.latencies,
        "first": tally.first,
        "last_seen": tally.last_seen,
        "deliveries": tally.deliveries,
        "dup": tally.dup,
        "ooo": tally.ooo,
        "last": tally.last,
        "starts": tally.starts,
        "slugs": slugs,
        "cpu": cpu,
        "lost": 0,
    }


def hold(url: str, count: int, ready: Any, done: Any) -> None:
    """Open `count` idle WebSockets (websockets' client: no subscription, no traffic),
    release `ready`, and hold them until `done`."""
    raise_fd_limit()

    async def main() -> None:
        conns = []
        for _ in range(count):
            conns.append(
                await connect(url, additional_headers=AUTH, compression=None, ping_interval=None)
            )
        ready.release()
        await asyncio.to_thread(done.wait)
        for conn in conns:
            await conn.close()

    asyncio.run(main())
