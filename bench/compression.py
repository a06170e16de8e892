"""What per-message deflate costs in memory, per WebSocket of one worker.

`uv run python -m bench.compression 5000`: for compression off, then on, start
`switchboard serve` (one worker, embedded store, `SWITCHBOARD_WS_COMPRESSION`), open N
connections and read the worker's RSS with them idle; then every connection subscribes
to one board and one event goes out to all of them (with compression, each connection
compresses it), and RSS is read again. Prints one JSON line per setting, KiB per
connection over the RSS before the N connections opened (bench/NOTES.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.measure import raise_fd_limit, rss
from bench.server import free_port

KEY = "sbk_bench_compression_0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}
SUBSCRIBE = '{"type":"subscribe","channel":"board:m"}'
BATCH = 100
"""Subscriptions started at once: the embedded store's pool is small."""


async def _ready(http: httpx.AsyncClient) -> None:
    for _ in range(600):
        try:
            if (await http.get("/readyz")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the server did not start")


async def _open(url: str, compression: bool) -> ClientConnection:
    return await connect(
        url,
        additional_headers=AUTH,
        compression="deflate" if compression else None,
        ping_interval=None,
        max_queue=None,
    )


def measure(compression: bool, count: int) -> dict[str, Any]:
    """One server, `count` connections: KiB per connection idle and after one event."""
    tmp = Path(tempfile.mkdtemp(prefix="sb-compression-"))
    port = free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/sb.db",
        "SWITCHBOARD_BROKER_URL": "memory://",
        "SWITCHBOARD_ADMIN_KEY": KEY,
        "SWITCHBOARD_LOG_LEVEL": "warning",
        "SWITCHBOARD_WRITE_RATE_LIMIT": "0",
        "SWITCHBOARD_MAX_CONNECTIONS_PER_CREDENTIAL": str(count + 10),
        "SWITCHBOARD_WS_COMPRESSION": "true" if compression else "false",
    }
    with (tmp / "server.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "switchboard.cli", "serve", "--port", str(port)],
            env=env,
            stderr=log,
            start_new_session=True,
        )
    try:
        found = asyncio.run(_measure(server.pid, port, compression, count))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)
    return {"compression": compression, "connections": count, **found}


async def _measure(pid: int, port: int, compression: bool, count: int) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{port}/ws"
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=AUTH, timeout=30
    ) as http:
        await _ready(http)
        (await http.post("/api/boards", json={"slug": "m", "title": "m"})).raise_for_status()
        widget = {"kind": "number", "title": "w", "value": 1}
        (await http.put("/api/boards/m/widgets/w", json=widget)).raise_for_status()
        async with await _open(url, compression) as warm:  # first-use allocations
            await warm.send(SUBSCRIBE)
            await warm.recv()
            await warm.recv()
        await asyncio.sleep(1)
        before = rss(pid)
        connections = [await _open(url, compression) for _ in range(count)]
        handshake = connections[0].response
        extensions = handshake.headers.get("Sec-WebSocket-Extensions") if handshake else None
        await asyncio.sleep(2)
        idle = rss(pid)
        for start in range(0, count, BATCH):
            batch = connections[start : start + BATCH]
            for ws in batch:
                await ws.send(SUBSCRIBE)
            for ws in batch:
                await ws.recv()  # subscribed
                await ws.recv()  # snapshot
        (await http.patch("/api/boards/m/widgets/w", json={"value": 2})).raise_for_status()
        for ws in connections:
            await ws.recv()  # the event
        await asyncio.sleep(2)
        busy = rss(pid)
        for ws in connections:
            await ws.close()
    return {
        "extensions": extensions,
        "rss_before_mib": round(before / 2**20, 1),
        "idle_kib_per_connection": round((idle - before) / count / 1024, 1),
        "after_one_event_kib_per_connection": round((busy - before) / count / 1024, 1),
    }


def main() -> None:
    raise_fd_limit()
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    for compression in (False, True):
        print(json.dumps(measure(compression, count)), flush=True)


if __name__ == "__main__":
    main()
