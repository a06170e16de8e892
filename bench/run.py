"""The fan-out benchmark: Switchboard in production mode (PostgreSQL + Redis, 2 workers),
driven over loopback by separate load-generator processes.

    uv run python -m bench            # the full run (a few minutes)
    uv run python -m bench --quick    # the CI smoke run (seconds)

CPU time is read from /proc (Linux): user+sys of the server's worker processes over a
phase, divided by the deliveries in it — comparable on a noisy shared machine where
wall-clock latencies are not.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import multiprocessing as mp
import os
import resource
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import typing
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import httpx
import orjson
import uvloop
from websockets.asyncio.client import connect

PG_ADMIN = os.environ.get(
    "SWITCHBOARD_TEST_PG", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS = os.environ.get("SWITCHBOARD_TEST_REDIS", "redis://127.0.0.1:6379/0")
KEY = os.environ.setdefault(
    "SWITCHBOARD_BENCH_KEY", f"bench-{uuid.uuid4().hex}"
)  # shared with spawned load generators
AUTH = {"Authorization": f"Bearer {KEY}"}
TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


# ---- processes and /proc ------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine (all cores) since boot, from /proc/stat:
    user, nice, system, irq and softirq. Over a write phase it covers what per-process
    readings cannot: PostgreSQL's backends (a floor writer's exits with its connection)
    and the kernel's network work."""
    user, nice, system, _idle, _iowait, irq, softirq = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]
    )
    return (user + nice + system + irq + softirq) / TICK


class CpuSplit:
    """Where a write phase's CPU went, per write: the whole machine, the server's workers,
    this process (the load generator, or the floor's asyncpg writers), and the rest
    (PostgreSQL, Redis, the kernel's network work, anything else running)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start = (machine_cpu(), server.cpu(), time.process_time())

    def per_write(self, writes: int) -> dict[str, float]:
        machine, server, own = (
            now - then
            for now, then in zip(
                (machine_cpu(), self.server.cpu(), time.process_time()), self.start, strict=True
            )
        )
        split = {
            "machine": machine,
            "server": server,
            "bench_process": own,
            "rest": machine - server - own,
        }
        return {k: round(v / writes * 1000, 3) for k, v in split.items()} if writes else {}


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def workers(self) -> list[int]:
        """The worker processes (uvicorn's supervisor also runs multiprocessing's
        resource tracker: not a worker)."""
        found = [
            pid
            for pid in children(self.process.pid)
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        return found or [self.process.pid]

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.workers)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(db_url: str, prefix: str, workers: int) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": db_url,
        "SWITCHBOARD_BROKER_URL": REDIS,
        "SWITCHBOARD_BROKER_PREFIX": prefix,
        "SWITCHBOARD_ADMIN_KEY": KEY,
        "SWITCHBOARD_WRITE_RATE_LIMIT": "0",
        "SWITCHBOARD_LOG_LEVEL": "warning",
        "SWITCHBOARD_MAX_CONNECTIONS_PER_CREDENTIAL": "100000",
        "SWITCHBOARD_DB_POOL_SIZE": "20",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "switchboard.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        start_new_session=True,
        stderr=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    server = Server(process, port)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200
            if ready and len(server.workers) >= workers:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("server did not start")


# ---- load generator: subscribers ----------------------------------------------------------


def subscriber_process(
    url: str, slug: str, count: int, ready: Any, go: Any, results: Any, duration: float
) -> None:
    """Hold `count` subscriptions; record every delivery's latency and order."""
    raise_fd_limit()
    results.put(uvloop.run(_subscribers(url, slug, count, ready, go, duration)))


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
    url: str, slug: str, count: int, ready: Any, go: Any, duration: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    tally = Tally(count)
    host, port = url.removeprefix("ws://").split("/", 1)[0].split(":")
    request = (
        f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
        f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {KEY}\r\n\r\n"
    ).encode()
    subscribe = _client_frame(0x1, orjson.dumps({"type": "subscribe", "channel": f"board:{slug}"}))
    transports = []
    for i in range(count):
        transport, _ = await loop.create_connection(
            functools.partial(LightSubscriber, tally, i, request, subscribe), host, int(port)
        )
        transports.append(transport)
    await asyncio.wait_for(tally.ready, 120)
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
        "cpu": cpu,
        "lost": 0,
    }


# ---- load generator: writer ---------------------------------------------------------------


class Http1:
    """A keep-alive HTTP/1.1 connection that costs the load generator little: its CPU is
    taken from the server's two cores, and httpx's per-request Python is several times
    this. Enough for these requests: a JSON body out, a `content-length` response back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.head = f"Host: 127.0.0.1\r\nAuthorization: Bearer {KEY}\r\n".encode()

    @classmethod
    async def open(cls, url: str) -> Http1:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def request(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        payload = orjson.dumps(body)
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\n".encode()
            + self.head
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(payload)).encode()
            + b"\r\n\r\n"
            + payload
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def write_loop(
    url: str,
    slugs: list[str],
    rate: float | None,
    duration: float,
    concurrency: int = 1,
    batch: int = 0,
) -> dict[str, Any]:
    """PATCH a number widget whose value is the send time (ms), at `rate`/s or flat out;
    writer i writes board `slugs[i % len(slugs)]`. With `batch`, each write is one batch
    PATCH of widgets `n0`…`n{batch-1}`."""
    latencies: list[float] = []
    end = time.monotonic() + duration

    async def worker(i: int) -> None:
        slug = slugs[i % len(slugs)]
        path = f"/api/boards/{slug}/widgets" + ("" if batch else "/n")
        http = await Http1.open(url)
        next_at = time.monotonic()
        try:
            while time.monotonic() < end:
                started = time.perf_counter()
                value = time.time() * 1000
                body = {"widgets": {f"n{k}": {"value": value} for k in range(batch)}}
                status, answer = await http.request(
                    "PATCH", path, body if batch else {"value": value}
                )
                if status != 200:
                    raise RuntimeError(f"PATCH {path}: {status} {answer[:200]!r}")
                latencies.append(time.perf_counter() - started)
                if rate:
                    next_at += concurrency / rate
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        finally:
            http.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return {"writes": len(latencies), "latencies": latencies}


# ---- phases -------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Phase:
    name: str
    subscribers: int = 0
    writes: int = 0
    deliveries: int = 0
    expected: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    max_ms: float = float("nan")
    deliveries_per_s: float = 0.0
    server_cpu_us_per_delivery: float = float("nan")
    loadgen_cpu_util: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


async def _board(url: str, slug: str, widgets: int = 0) -> None:
    """A board with number widget `n` (and `n0`…`n{widgets-1}` for batches)."""
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        await http.post("/api/boards", json={"slug": slug})
        for key in ["n", *(f"n{k}" for k in range(widgets))]:
            put = await http.put(f"/api/boards/{slug}/widgets/{key}", json={"kind": "number"})
            put.raise_for_status()


def _boards(url: str, count: int, widgets: int = 0) -> list[str]:
    slugs = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for slug in slugs:
        asyncio.run(_board(url, slug, widgets))
    return slugs


def fanout(
    server: Server,
    name: str,
    subscribers: int,
    rate: float | None,
    duration: float,
    concurrency: int = 1,
) -> Phase:
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    asyncio.run(_board(server.url, slug))
    procs = max(1, min(CORES * 2, subscribers // 500 or 1))
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    share = [subscribers // procs + (1 if i < subscribers % procs else 0) for i in range(procs)]
    ws_url = server.url.replace("http", "ws") + "/ws"
    listen = duration + 3
    workers = [
        ctx.Process(target=subscriber_process, args=(ws_url, slug, n, ready, go, results, listen))
        for n in share
    ]
    for w in workers:
        w.start()
    for _ in workers:
        ready.acquire(timeout=300)
    cpu0, t0 = server.cpu(), time.monotonic()
    go.set()
    wrote = asyncio.run(write_loop(server.url, [slug], rate, duration, concurrency))
    server_rss = sum(rss(pid) for pid in server.workers)  # subscribers still connected
    outcomes = [results.get(timeout=120) for _ in workers]
    elapsed = time.monotonic() - t0
    cpu = server.cpu() - cpu0
    for w in workers:
        w.join(10)
    latencies = [x for o in outcomes for x in o["latencies"]]
    first: dict[float, float] = {}
    last: dict[float, float] = {}
    for o in outcomes:
        for value, latency in o["first"].items():
            first[value] = min(latency, first.get(value, latency))
        for value, latency in o["last_seen"].items():
            last[value] = max(latency, last.get(value, latency))
    spread = [last[value] - first[value] for value in first]
    deliveries = sum(o["deliveries"] for o in outcomes)
    final = wrote["writes"] + 1  # widget creation was seq 1 (board creation makes no event)
    lost = sum(max(0, final - last) for o in outcomes for last in o["last"])
    expected = sum(final - start for o in outcomes for start in o["starts"])
    loadgen_cpu = sum(o["cpu"] for o in outcomes)
    return Phase(
        name=name,
        subscribers=subscribers,
        writes=wrote["writes"],
        deliveries=deliveries,
        expected=expected,
        lost=lost,
        duplicated=sum(o["dup"] for o in outcomes),
        out_of_order=sum(o["ooo"] for o in outcomes),
        p50_ms=round(pct(latencies, 0.5), 2),
        p99_ms=round(pct(latencies, 0.99), 2),
        max_ms=round(max(latencies), 2) if latencies else float("nan"),
        deliveries_per_s=round(deliveries / elapsed, 1),
        server_cpu_us_per_delivery=round(cpu / deliveries * 1e6, 2) if deliveries else float("nan"),
        loadgen_cpu_util=round(loadgen_cpu / (listen * min(procs, CORES)), 2),
        extra={
            "loadgen_processes": procs,
            "server_rss_mib": round(server_rss / 2**20, 1),
            "write_p50_ms": round(pct(wrote["latencies"], 0.5) * 1000, 2),
            "first_receipt_p50_p99_ms": [
                round(pct(list(first.values()), q), 2) for q in (0.5, 0.99)
            ],
            "spread_p50_p99_ms": [round(pct(spread, q), 2) for q in (0.5, 0.99)],
            "loadgen_cpu_us_per_delivery": round(loadgen_cpu / deliveries * 1e6, 2)
            if deliveries
            else float("nan"),
            "loadgen_saturated": loadgen_cpu / (listen * min(procs, CORES)) > 0.9,
        },
    )


def idle_connections(server: Server, count: int) -> Phase:
    """Memory per idle WebSocket held by one worker, and the time to accept them."""
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    asyncio.run(_board(server.url, slug))
    pid = server.workers[0]
    before = rss(pid)
    procs = max(1, min(CORES * 2, count // 2000 or 1))
    ctx = mp.get_context("spawn")
    ready, done = ctx.Semaphore(0), ctx.Event()
    t0 = time.monotonic()
    holders = [
        ctx.Process(
            target=_hold,
            args=(server.url.replace("http", "ws") + "/ws", count // procs, ready, done),
        )
        for _ in range(procs)
    ]
    for h in holders:
        h.start()
    for _ in holders:
        ready.acquire(timeout=600)
    accept_s = time.monotonic() - t0
    time.sleep(1)
    after = rss(pid)
    done.set()
    for h in holders:
        h.join(60)
    held = count // procs * procs
    return Phase(
        name=f"idle connections x{held}",
        subscribers=held,
        extra={
            "rss_before_mib": round(before / 2**20, 1),
            "rss_after_mib": round(after / 2**20, 1),
            "kib_per_connection": round((after - before) / held / 1024, 2),
            "accept_seconds": round(accept_s, 2),
        },
    )


def _hold(url: str, count: int, ready: Any, done: Any) -> None:
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


def writes(server: Server, duration: float, concurrency: int, boards: int = 1) -> Phase:
    """REST widget PATCHes flat out, no subscribers: writes/s and latency."""
    slugs = _boards(server.url, boards)
    before = _db_seconds(server.url)
    split, t0 = CpuSplit(server), time.monotonic()
    wrote = asyncio.run(write_loop(server.url, slugs, None, duration, concurrency))
    elapsed = time.monotonic() - t0
    cpu_ms = split.per_write(wrote["writes"])
    db = _db_seconds(server.url) - before
    total = sum(wrote["latencies"])
    return _timed(
        f"REST writes, {concurrency} concurrent, {_on(boards)}",
        wrote["latencies"],
        writes_per_s=round(wrote["writes"] / elapsed, 1),
        server_cpu_ms_per_write=cpu_ms["server"],
        db_share_of_write_time=round(db / total, 2) if total else None,
        cpu_ms_per_write=cpu_ms,
    )


def _timed(name: str, latencies: list[float], **extra: Any) -> Phase:
    """A write phase: one write per latency (seconds), with its percentiles in ms."""
    return Phase(
        name=name,
        writes=len(latencies),
        p50_ms=round(pct(latencies, 0.5) * 1000, 2),
        p99_ms=round(pct(latencies, 0.99) * 1000, 2),
        max_ms=round(max(latencies) * 1000, 2),
        extra=extra,
    )


def _on(boards: int) -> str:
    return "1 board" if boards == 1 else f"{boards} boards"


def single_writes(server: Server, count: int) -> Phase:
    """One PATCH at a time on an idle server: the latency of a write alone."""
    slug = _boards(server.url, 1)[0]

    async def run() -> list[float]:
        http = await Http1.open(server.url)
        latencies = []
        try:
            for i in range(count):
                started = time.perf_counter()
                status, _ = await http.request(
                    "PATCH", f"/api/boards/{slug}/widgets/n", {"value": i}
                )
                assert status == 200, status
                latencies.append(time.perf_counter() - started)
        finally:
            http.close()
        return latencies

    cpu0 = server.cpu()
    latencies = asyncio.run(run())[count // 10 :]  # the first ones warm caches up
    cpu = server.cpu() - cpu0
    return _timed(
        "single PATCH, idle server",
        latencies,
        server_cpu_ms_per_write=round(cpu / count * 1000, 3),
    )


def batch_writes(server: Server, duration: float, concurrency: int, size: int) -> Phase:
    """Batch PATCHes of `size` number widgets on one board, flat out: widgets/s."""
    slug = _boards(server.url, 1, size)[0]
    t0 = time.monotonic()
    wrote = asyncio.run(write_loop(server.url, [slug], None, duration, concurrency, batch=size))
    elapsed = time.monotonic() - t0
    return _timed(
        f"REST batch writes of {size}, {concurrency} concurrent, 1 board",
        wrote["latencies"],
        batches_per_s=round(wrote["writes"] / elapsed, 1),
        widgets_per_s=round(wrote["writes"] * size / elapsed, 1),
    )


# ---- the store floor ----------------------------------------------------------------------

WIDGET = {"key": "n", "kind": "number", "title": "", "config": {}, "version": 2}
"""The event data of a floor write: a widget as REST shows it, the same size."""
FLOOR_THREE = (
    "UPDATE boards SET seq = seq + 1 WHERE id = $1 RETURNING seq",
    "UPDATE widgets SET value = $2::jsonb, version = version + 1, updated_at = $3 WHERE id = $1",
    "INSERT INTO events (board_id, seq, name, data, at)"
    " VALUES ($1, $2, 'widget.updated', $3::jsonb, $4)",
)
FLOOR_CTE = (
    "WITH b AS (UPDATE boards SET seq = seq + 1 WHERE id = $1 RETURNING id, seq),"
    " w AS (UPDATE widgets SET value = $3::jsonb, version = version + 1, updated_at = $4"
    " WHERE id = $2)"
    " INSERT INTO events (board_id, seq, name, data, at)"
    " SELECT b.id, b.seq, 'widget.updated', $5::jsonb, $4 FROM b"
)


def store_floor(
    server: Server, db_url: str, duration: float, concurrency: int, boards: int, *, cte: bool
) -> Phase:
    """What PostgreSQL itself allows a widget PATCH: lock the board row (taking its next
    seq), update the widget, insert the event, commit — straight through asyncpg, no
    HTTP, no ORM, `concurrency` writers, writer i on board i % `boards`. Three statements,
    or the same three as one CTE (one round trip)."""
    slugs = _boards(server.url, boards)
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")

    async def run() -> list[float]:
        conn = await asyncpg.connect(dsn)
        rows = await conn.fetch(
            "SELECT b.id AS board, w.id AS widget FROM boards b JOIN widgets w"
            " ON w.board_id = b.id AND w.key = 'n' WHERE b.slug = ANY($1::text[])",
            slugs,
        )
        await conn.close()
        ids = [(r["board"], r["widget"]) for r in rows]
        latencies: list[float] = []
        end = time.monotonic() + duration

        async def writer(i: int) -> None:
            board, widget = ids[i % len(ids)]
            db = await asyncpg.connect(dsn)
            try:
                while time.monotonic() < end:
                    started = time.perf_counter()
                    now = datetime.now(UTC)
                    ms = time.time() * 1000
                    data = orjson.dumps({**WIDGET, "value": ms, "updated_at": now}).decode()
                    value = orjson.dumps(ms).decode()
                    async with db.transaction():
                        if cte:
                            await db.execute(FLOOR_CTE, board, widget, value, now, data)
                        else:
                            seq = await db.fetchval(FLOOR_THREE[0], board)
                            await db.execute(FLOOR_THREE[1], widget, value, now)
                            await db.execute(FLOOR_THREE[2], board, seq, data, now)
                    latencies.append(time.perf_counter() - started)
            finally:
                await db.close()

        await asyncio.gather(*(writer(i) for i in range(concurrency)))
        return latencies

    split = CpuSplit(server)
    t0 = time.monotonic()
    latencies = asyncio.run(run())
    elapsed = time.monotonic() - t0
    return _timed(
        f"store floor ({'one CTE' if cte else 'three statements'}), "
        f"{concurrency} concurrent, {_on(boards)}",
        latencies,
        writes_per_s=round(len(latencies) / elapsed, 1),
        cpu_ms_per_write=split.per_write(len(latencies)),
    )


def _db_seconds(url: str) -> float:
    """Write transaction time, summed over the workers (`/metrics` covers all of them)."""
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith("switchboard_write_db_seconds_sum "):
            return float(line.split()[1])
    return 0.0


def reference(subscribers: int, frames: int) -> Phase:
    """A bare loop writing one pre-encoded frame to N plain loopback TCP sockets: the floor.

    A thread drains the far ends; only the writing thread's CPU time is counted.
    """
    raise_fd_limit()
    frame = b"\x81\x7e\x00\xc8" + b"x" * 200  # a 200-byte WebSocket text frame
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(subscribers)
    writers, readers = [], []
    for _ in range(subscribers):
        writers.append(socket.create_connection(listener.getsockname()))
        readers.append(listener.accept()[0])
    stop = threading.Event()

    def drain() -> None:
        selector = selectors.DefaultSelector()
        for sock in readers:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in selector.select(0.1):
                with contextlib.suppress(BlockingIOError):
                    key.fileobj.recv(1 << 16)  # type: ignore[union-attr]

    sink = threading.Thread(target=drain)
    sink.start()
    cpu0 = time.thread_time()
    for _ in range(frames):
        for sock in writers:
            sock.sendall(frame)
    cpu = time.thread_time() - cpu0
    stop.set()
    sink.join()
    for sock in writers + readers:
        sock.close()
    listener.close()
    return Phase(
        name=f"reference: bare socket writes x{subscribers}",
        subscribers=subscribers,
        deliveries=frames * subscribers,
        server_cpu_us_per_delivery=round(cpu / (frames * subscribers) * 1e6, 2),
    )
