"""A stopping worker always ends: SIGTERM drains and exits within 15 s whatever its
connections are doing, a second signal ends it at once, and a hard deadline backs both."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from websockets.asyncio.client import connect

from switchboard.shutdown import Background, close_within
from tests.conftest import REDIS_URL
from tests.helpers import (
    ADMIN_KEY,
    AUTH,
    ServerProcess,
    WsClient,
    masked_text,
    raw_websocket,
    spawn_server,
    sse,
)

STOP_BOUND = 15.0


@pytest.fixture
def env(pg_url: str, prefix: str) -> dict[str, str]:
    """A production worker: PostgreSQL + Redis."""
    return {
        "SWITCHBOARD_DATABASE_URL": pg_url,
        "SWITCHBOARD_BROKER_URL": REDIS_URL,
        "SWITCHBOARD_BROKER_PREFIX": prefix,
        "SWITCHBOARD_WS_QUEUE_MAX_BYTES": str(64 * 1024 * 1024),  # stalled, not cut as slow
    }


@pytest.fixture
async def worker(env: dict[str, str], tmp_path: Path) -> AsyncIterator[ServerProcess]:
    server = await spawn_server(env, log=tmp_path / "server.log")
    try:
        yield server
    finally:
        server.kill()
        server.process.wait(5)


def _log(tmp_path: Path) -> str:
    return (tmp_path / "server.log").read_text(errors="replace")


async def _stalled(worker: ServerProcess, http: httpx.AsyncClient, slug: str) -> socket.socket:
    """A subscribed client that stops reading with megabytes on their way to it: the
    server can send it nothing more, not even a close frame (on a board of its own)."""
    board = f"{slug}-stalled"
    assert (await http.post("/api/boards", json={"slug": board})).status_code == 201
    sock = raw_websocket(worker.port, "/ws", rcvbuf=4096)
    sock.sendall(masked_text(f'{{"type":"subscribe","channel":"board:{board}"}}'))
    blob = "x" * 500_000
    for i in range(10):
        widget = {"kind": "text", "config": {"blob": blob}}
        assert (await http.put(f"/api/boards/{board}/widgets/w{i}", json=widget)).is_success
    return sock


async def _exited_within(worker: ServerProcess, bound: float) -> float:
    """Seconds until the process exits (failing past `bound`)."""
    start = time.monotonic()
    while worker.process.poll() is None:
        assert time.monotonic() - start < bound, f"still running after {bound} s"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


async def _viewer(worker: ServerProcess, credential: str, slug: str) -> WsClient:
    headers = {"Authorization": f"Bearer {credential}"}
    ws = WsClient(await connect(worker.ws_url, additional_headers=headers))
    await ws.subscribe(slug)
    assert (await ws.recv())["type"] == "snapshot"
    return ws


async def test_sigterm_drains_a_busy_worker_and_exits_in_time(
    worker: ServerProcess, slug: str, pg_url: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient(base_url=worker.base_url, headers=AUTH) as http:
        assert (await http.post("/api/boards", json={"slug": slug})).status_code == 201
        widget = await http.put(f"/api/boards/{slug}/widgets/w", json={"kind": "number"})
        assert widget.status_code == 201

        live = await _viewer(worker, ADMIN_KEY, slug)
        stalled = await _stalled(worker, http, slug)

        key = (await http.post("/api/keys", json={"role": "write"})).json()
        revoked = await _viewer(worker, key["key"], slug)
        assert (await http.delete(f"/api/keys/{key['id']}")).status_code == 204
        assert await revoked.closed_with() == 4101

        token = (await http.post("/api/tokens", json={"ttl": 2})).json()["token"]
        expired = await _viewer(worker, token, slug)
        assert await expired.closed_with(timeout=10) == 4101

        async with sse(http, f"/api/boards/{slug}/stream") as stream:
            assert (await stream.next()).event == "snapshot"

            # A write in flight: headers and half its body are in when the signal arrives.
            body = orjson.dumps({"value": 42})
            writer = socket.create_connection(("127.0.0.1", worker.port))
            writer.sendall(
                (
                    f"PATCH /api/boards/{slug}/widgets/w HTTP/1.1\r\n"
                    f"Host: 127.0.0.1\r\nAuthorization: Bearer {ADMIN_KEY}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body[:5]
            )
            await asyncio.sleep(0.2)
            worker.kill(signal.SIGTERM)
            await asyncio.sleep(0.2)
            writer.sendall(body[5:])
            writer.settimeout(10)
            response = b""
            while chunk := writer.recv(65536):
                response += chunk
            writer.close()
            assert response.startswith(b"HTTP/1.1 200"), response

            assert await live.closed_with() == 1012
            with pytest.raises((EOFError, httpx.RemoteProtocolError)):
                await stream.next(timeout=5)

    await _exited_within(worker, STOP_BOUND)
    stalled.close()
    assert worker.process.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    log = _log(tmp_path)
    assert "stopped" in log  # every cleanup step ran, each within its deadline:
    assert "shutdown_step" not in log
    assert "stop_deadline_exceeded" not in log

    engine = create_async_engine(pg_url)
    async with engine.connect() as conn:
        value = await conn.scalar(
            text(
                "SELECT w.value FROM widgets w JOIN boards b ON b.id = w.board_id"
                " WHERE b.slug = :slug AND w.key = 'w'"
            ).bindparams(slug=slug)
        )
    await engine.dispose()
    assert value == 42


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
async def test_a_second_signal_ends_a_stuck_stop_at_once(
    worker: ServerProcess, slug: str, tmp_path: Path, second: signal.Signals
) -> None:
    async with httpx.AsyncClient(base_url=worker.base_url, headers=AUTH) as http:
        assert (await http.post("/api/boards", json={"slug": slug})).status_code == 201
        stalled = await _stalled(worker, http, slug)
    await asyncio.sleep(0.3)
    worker.kill(signal.SIGTERM)
    await asyncio.sleep(1.5)  # a second signal, not the first one delivered twice
    assert worker.process.poll() is None  # still waiting for the client that never answers
    worker.kill(second)
    assert await _exited_within(worker, 2.0) < 2.0
    stalled.close()
    assert worker.process.returncode == 1
    assert "stop_forced" in _log(tmp_path)


async def test_a_stop_sent_to_every_process_of_a_multi_worker_server_drains(
    env: dict[str, str], slug: str, tmp_path: Path
) -> None:
    """systemd's control-group kill, or Ctrl-C in a terminal, signals the supervisor and
    its workers at once, and the supervisor then signals each worker again: one stop,
    delivered twice, which must drain (1012 to clients), not force an exit."""
    server = await spawn_server(env, workers=2, log=tmp_path / "server.log", timeout=60)
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH) as http:
            assert (await http.post("/api/boards", json={"slug": slug})).status_code == 201
        clients = []
        for _ in range(4):  # the kernel spreads them over both workers
            client = WsClient(await connect(server.ws_url, additional_headers=AUTH))
            await client.subscribe(slug)
            clients.append(client)
        server.kill(signal.SIGTERM)  # the whole process group, as systemd does
        codes = [await client.closed_with() for client in clients]
        await _exited_within(server, STOP_BOUND)
        assert codes == [1012] * 4
        assert "stop_forced" not in _log(tmp_path)
    finally:
        server.kill()
        server.process.wait(5)


async def test_the_stop_deadline_ends_a_worker_whatever_it_waits_for(
    env: dict[str, str], slug: str, tmp_path: Path
) -> None:
    env = {**env, "SWITCHBOARD_DRAIN_TIMEOUT": "60", "SWITCHBOARD_STOP_DEADLINE": "2"}
    worker = await spawn_server(env, log=tmp_path / "server.log")
    try:
        async with httpx.AsyncClient(base_url=worker.base_url, headers=AUTH) as http:
            assert (await http.post("/api/boards", json={"slug": slug})).status_code == 201
            stalled = await _stalled(worker, http, slug)
        await asyncio.sleep(0.3)
        worker.kill(signal.SIGTERM)
        elapsed = await _exited_within(worker, 6.0)
        stalled.close()
        assert elapsed >= 1.9
        assert worker.process.returncode == 1
        assert "stop_deadline_exceeded" in _log(tmp_path)
    finally:
        worker.kill()
        worker.process.wait(5)


async def test_a_cleanup_step_that_swallows_cancellation_cannot_hold_shutdown() -> None:
    finished, release = asyncio.Event(), asyncio.Event()

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                continue  # the bug class: a loop that catches its own cancellation

    async def quick() -> None:
        finished.set()

    start = time.monotonic()
    assert not await close_within("stubborn", stubborn, 0.2)
    assert time.monotonic() - start < 1.0
    assert await close_within("quick", quick, 0.2)
    assert finished.is_set()
    release.set()


async def test_a_background_loop_stops_even_when_its_cancellation_is_lost() -> None:
    """The root cause of the hung test server: on Python 3.11, `asyncio.wait_for` (inside
    redis-py) swallows a cancellation that arrives as its operation completes, and a
    `while True` loop then never ends. `Background` loops check `running` as well."""
    background = Background()
    pending: list[asyncio.Future[None]] = []
    turns = 0

    async def loop() -> None:
        nonlocal turns
        while background.running:
            turns += 1
            pending.append(asyncio.get_running_loop().create_future())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(pending[-1], 5)

    background.start(loop(), "test loop")
    await asyncio.sleep(0)
    pending[-1].set_result(None)  # the operation completes in the same turn as the stop
    stop = asyncio.ensure_future(background.stop())
    done, _ = await asyncio.wait({stop}, timeout=2)
    assert done, "the loop ran on after stop"
    assert turns == 1
