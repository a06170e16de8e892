"""What one connection may hold, and what it may hold up: replays, snapshots and live events
all fit the per-connection bounds; a client that does not read pins no pooled database
connection; a healthy client replaying on a busy worker is never cut."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import orjson
from websockets.asyncio.client import connect

from switchboard.api.writes import write
from switchboard.store.widgets import update_widget
from tests.conftest import backend_settings, production_env
from tests.helpers import (
    AUTH,
    LiveServer,
    WsClient,
    masked_text,
    metric,
    raw_websocket,
    rss_bytes,
    serve_processes,
    spawn_server,
    start_server,
)

BIG = "x" * 9_500


async def _history(server: LiveServer, slug: str, count: int, value: str = "") -> None:
    """`count` widget.updated events on `slug`, written in one transaction (fast)."""
    await server.put_widget(slug, "t", kind="text", value="")
    async with write(server.state) as tx:
        for i in range(count):
            await update_widget(tx, slug, "t", {"value": f"{value}{i}"}, if_match=None)


def _subscribe(sock: socket.socket, slug: str, since: int | None = None) -> None:
    extra = f',"since":{since}' if since is not None else ""
    sock.sendall(masked_text(f'{{"type":"subscribe","channel":"board:{slug}"{extra}}}'))


async def test_replays_to_clients_that_do_not_read_stay_within_the_byte_bound(
    tmp_path: Path, slug: str
) -> None:
    """Eight clients replay ~9.5 MB of history each and read nothing: the worker grows by
    about their bounds (1 MiB each here), not by the history they asked for."""
    env = {
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db",
        "SWITCHBOARD_WS_QUEUE_MAX_BYTES": str(1024 * 1024),
    }
    server = await spawn_server(env, cwd=str(tmp_path))
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=30) as http:
            await http.post("/api/boards", json={"slug": slug, "public": True})
            await http.put(f"/api/boards/{slug}/widgets/t", json={"kind": "text", "value": ""})
            for i in range(1000):
                response = await http.patch(
                    f"/api/boards/{slug}/widgets/t", json={"value": f"{BIG}{i}"}
                )
                assert response.status_code == 200
        before = rss_bytes(server.process.pid)
        clients = [raw_websocket(server.port, "/ws", rcvbuf=8192) for _ in range(8)]
        for sock in clients:
            _subscribe(sock, slug, since=0)
        await asyncio.sleep(3)  # every replay has filled what it may
        grown = rss_bytes(server.process.pid) - before
        for sock in clients:
            sock.close()
    finally:
        server.stop()
    assert grown < 24 * 1024 * 1024, f"grew {grown / 2**20:.1f} MiB"


async def test_a_client_that_does_not_read_pins_no_database_connection(
    pg_url: str, prefix: str, slug: str
) -> None:
    """Clients stuck while subscribing (their queue is full) hold no pooled connection:
    with a pool of two, REST still answers."""
    env = production_env(
        pg_url,
        prefix,
        SWITCHBOARD_DB_POOL_SIZE="1",
        SWITCHBOARD_WS_QUEUE_MAX_MESSAGES="20",
    )
    async with serve_processes(env, 1) as (server,):
        big, small = f"{slug}-big", f"{slug}-small"
        async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=30) as http:
            await http.post("/api/boards", json={"slug": big})
            await http.post("/api/boards", json={"slug": small})
            for i in range(1000):  # a ~10 MB snapshot: more than the sockets' buffers hold
                await http.put(
                    f"/api/boards/{big}/widgets/w{i}", json={"kind": "text", "value": "y" * 9_900}
                )
        stuck = []
        for _ in range(2):
            sock = raw_websocket(server.port, "/ws", rcvbuf=4096)
            _subscribe(sock, big)  # a snapshot the socket cannot take: the writer waits
            for _ in range(20):  # pongs fill the queue (one more is with the writer)…
                sock.sendall(masked_text('{"type":"ping"}'))
            _subscribe(sock, small)  # …so this snapshot must wait for room
            stuck.append(sock)
        await asyncio.sleep(1)
        async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=5) as http:
            response = await http.get(f"/api/boards/{small}")
        for sock in stuck:
            sock.close()
    assert response.status_code == 200


async def test_a_healthy_client_replaying_on_a_busy_board_is_not_cut(
    tmp_path: Path, slug: str
) -> None:
    """A replay fills only half of the queue, and what arrived meanwhile is flushed as room
    frees up: a client that pauses for a moment mid-replay (a slow link, a busy tab) while
    its other board keeps changing is not cut with 4008, and misses nothing."""
    settings = backend_settings("embedded", tmp_path, "", "", ws_queue_max_messages=50)
    async with start_server(settings) as server:
        history, busy = f"{slug}-history", f"{slug}-busy"
        await server.create_board(history)
        await _history(server, history, 1500, value="h" * 5_000)  # ~7.5 MB to replay
        await server.create_board(busy)
        await server.put_widget(busy, "n", value=0)
        sock = socket.socket()  # a small receive window: the server's writer waits on it
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
        sock.setblocking(False)
        port = int(server.base_url.rsplit(":", 1)[1])
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        ws = WsClient(await connect(server.ws_url, sock=sock, additional_headers=AUTH, max_queue=4))
        await ws.subscribe(busy)
        await ws.recv()  # snapshot
        stop = asyncio.Event()

        async def trickle() -> None:  # 20 writes a second on each board
            i = 0
            while not stop.is_set():
                i += 1
                await server.http.patch(f"/api/boards/{busy}/widgets/n", json={"value": i})
                await server.http.patch(f"/api/boards/{history}/widgets/t", json={"value": str(i)})
                await asyncio.sleep(0.05)

        writer = asyncio.create_task(trickle())
        try:
            await ws.send({"type": "subscribe", "channel": f"board:{history}", "since": 0})
            await asyncio.sleep(1)  # the client reads nothing for a moment
            seqs: list[int] = []
            async with asyncio.timeout(60):
                while len(seqs) < 1520:
                    frame = await ws.recv(timeout=10)
                    if frame["type"] == "event" and frame["channel"] == f"board:{history}":
                        seqs.append(frame["seq"])
        finally:
            stop.set()
            await writer
        assert seqs == list(range(1, len(seqs) + 1))
        await ws.close()


async def _read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One server frame (unmasked, unfragmented) from a non-blocking socket: opcode, payload.
    `EOFError` if the connection ends first."""
    loop = asyncio.get_running_loop()

    async def exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = await loop.sock_recv(sock, size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    first, second = await exactly(2)
    size = second & 0x7F
    if size == 126:
        size = int.from_bytes(await exactly(2), "big")
    elif size == 127:
        size = int.from_bytes(await exactly(8), "big")
    return first & 0x0F, await exactly(size)


async def test_a_client_cut_for_reading_slowly_always_gets_its_4008(
    tmp_path: Path, slug: str
) -> None:
    """A client that reads, but slower than its board changes, is cut at the byte bound: its
    close frame 4008 comes right after the last data frame it was sent, every time, and the
    metric counts each close that was sent."""
    env = {
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db",
        "SWITCHBOARD_WS_QUEUE_MAX_BYTES": str(128 * 1024),
        "SWITCHBOARD_WS_CLOSE_TIMEOUT": "1",
        "SWITCHBOARD_WS_PING_INTERVAL": "600",  # this client answers no ping
    }
    async with (
        serve_processes(env, 1) as (server,),
        httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=30) as http,
    ):
        await http.post("/api/boards", json={"slug": slug})
        await http.put(f"/api/boards/{slug}/widgets/t", json={"kind": "text", "value": ""})
        stop = asyncio.Event()

        async def cuts() -> float:
            text = (await http.get("/metrics")).text
            return metric(text, "switchboard_slow_consumer_disconnects_total")

        async def changes() -> None:  # frames of ~9.5 KB, as fast as the server takes them
            i = 0
            while not stop.is_set():
                i += 1
                await http.patch(f"/api/boards/{slug}/widgets/t", json={"value": f"{BIG}{i}"})

        writer = asyncio.create_task(changes())
        try:
            for attempt in range(10):
                before = await cuts()
                sock = raw_websocket(server.port, "/ws", rcvbuf=16_384)
                sock.setblocking(False)
                _subscribe(sock, slug)
                seqs: list[int] = []
                close, slow = None, True
                async with asyncio.timeout(60):
                    while close is None:
                        opcode, payload = await _read_frame(sock)
                        if opcode == 0x8:
                            close = int.from_bytes(payload[:2], "big")
                        elif b'"type":"event"' in payload:
                            seqs.append(orjson.loads(payload)["seq"])
                        if slow:  # ~10 frames a second, until the server has cut it
                            await asyncio.sleep(0.1)
                            slow = len(seqs) % 10 != 0 or await cuts() == before
                sock.close()
                assert close == 4008, attempt
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), attempt
        finally:
            stop.set()
            await writer
        assert await cuts() == 10
