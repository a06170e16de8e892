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
import contextlib
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
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
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
        return children(self.process.pid) or [self.process.pid]

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
    results.put(asyncio.run(_subscribers(url, slug, count, ready, go, duration)))


async def _subscribers(
    url: str, slug: str, count: int, ready: Any, go: Any, duration: float
) -> dict[str, Any]:
    latencies: list[float] = []
    lost = dup = ooo = deliveries = 0
    conns = []
    for _ in range(count):
        conn = await connect(url, additional_headers=AUTH, max_queue=None, compression=None)
        await conn.send(orjson.dumps({"type": "subscribe", "channel": f"board:{slug}"}).decode())
        conns.append(conn)
    starts: list[int] = []
    for conn in conns:
        while True:
            frame = orjson.loads(await conn.recv())
            if frame["type"] == "snapshot":
                starts.append(frame["seq"])
                break
    ready.release()
    await asyncio.to_thread(go.wait)
    cpu0 = time.process_time()
    last_seen: list[int] = list(starts)

    async def read(i: int, conn: Any) -> None:
        nonlocal lost, dup, ooo, deliveries
        try:
            async for raw in conn:
                now = time.time()
                frame = orjson.loads(raw)
                if frame.get("type") != "event":
                    continue
                seq = frame["seq"]
                deliveries += 1
                if seq <= last_seen[i]:
                    dup += 1
                    continue
                if seq != last_seen[i] + 1:
                    ooo += 1
                last_seen[i] = seq
                value = frame["data"].get("value")
                if isinstance(value, (int, float)) and value > 1e12:
                    latencies.append(now * 1000 - value)
        except Exception:
            return

    readers = [asyncio.create_task(read(i, c)) for i, c in enumerate(conns)]
    await asyncio.sleep(duration)
    cpu = time.process_time() - cpu0
    for task in readers:
        task.cancel()
    for conn in conns:
        await conn.close()
    return {
        "latencies": latencies,
        "deliveries": deliveries,
        "dup": dup,
        "ooo": ooo,
        "last": last_seen,
        "starts": starts,
        "cpu": cpu,
        "lost": lost,
    }


# ---- load generator: writer ---------------------------------------------------------------


async def write_loop(
    url: str, slug: str, rate: float | None, duration: float, concurrency: int = 1
) -> dict[str, Any]:
    """PATCH a number widget whose value is the send time (ms), at `rate`/s or flat out."""
    latencies: list[float] = []
    end = time.monotonic() + duration
    async with httpx.AsyncClient(
        base_url=url, headers=AUTH, timeout=30, limits=httpx.Limits(max_connections=concurrency)
    ) as http:

        async def one() -> None:
            started = time.perf_counter()
            response = await http.patch(
                f"/api/boards/{slug}/widgets/n", json={"value": time.time() * 1000}
            )
            response.raise_for_status()
            latencies.append(time.perf_counter() - started)

        async def worker() -> None:
            next_at = time.monotonic()
            while time.monotonic() < end:
                await one()
                if rate:
                    next_at += concurrency / rate
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
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


async def _board(url: str, slug: str) -> None:
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        await http.post("/api/boards", json={"slug": slug})
        await http.put(f"/api/boards/{slug}/widgets/n", json={"kind": "number", "value": 0})


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
    procs = max(1, min(CORES * 2, subscribers // 250 or 1))
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
    wrote = asyncio.run(write_loop(server.url, slug, rate, duration, concurrency))
    outcomes = [results.get(timeout=120) for _ in workers]
    elapsed = time.monotonic() - t0
    cpu = server.cpu() - cpu0
    for w in workers:
        w.join(10)
    latencies = [x for o in outcomes for x in o["latencies"]]
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
            "write_p50_ms": round(pct(wrote["latencies"], 0.5) * 1000, 2),
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


def writes(server: Server, duration: float, concurrency: int) -> Phase:
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    asyncio.run(_board(server.url, slug))
    before = _db_seconds(server.url)
    t0 = time.monotonic()
    wrote = asyncio.run(write_loop(server.url, slug, None, duration, concurrency))
    elapsed = time.monotonic() - t0
    db = _db_seconds(server.url) - before
    total = sum(wrote["latencies"])
    return Phase(
        name=f"writes, no subscribers, {concurrency} concurrent",
        writes=wrote["writes"],
        p50_ms=round(pct(wrote["latencies"], 0.5) * 1000, 2),
        p99_ms=round(pct(wrote["latencies"], 0.99) * 1000, 2),
        max_ms=round(max(wrote["latencies"]) * 1000, 2),
        extra={
            "writes_per_s": round(wrote["writes"] / elapsed, 1),
            "db_share_of_write_time": round(db / total, 2) if total else None,
            "note": "db share = server-side transaction time / client-side write latency",
        },
    )


def _db_seconds(url: str) -> float:
    """Sum of write transaction time over the workers (each /metrics answers for one)."""
    seen: dict[str, float] = {}
    for _ in range(20):  # the load balancer is the kernel: ask until both workers answered
        body = httpx.get(f"{url}/metrics").text
        total = pid = None
        for line in body.splitlines():
            if line.startswith("switchboard_write_db_seconds_sum "):
                total = float(line.split()[1])
            if line.startswith("switchboard_worker_pid "):
                pid = line.split()[1]
        if total is not None and pid is not None:
            seen[pid] = total
        if len(seen) >= 2:
            break
    return sum(seen.values())


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
