"""Test helpers: run a real server, talk to it over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import orjson
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from switchboard.app import create_app
from switchboard.cli.server import server_options
from switchboard.config import Settings
from switchboard.state import AppState
from tests.asyncapi import check_client_frame, check_server_frame, check_sse_message

ADMIN_KEY = f"sbtest-admin-{uuid.uuid4().hex}"
"""`SWITCHBOARD_ADMIN_KEY` of every server the tests start (unless a test says otherwise)."""
AUTH = {"Authorization": f"Bearer {ADMIN_KEY}"}
TOKEN_SECRET = f"sbtest-secret-{uuid.uuid4().hex}"
"""`SWITCHBOARD_SECRET` of in-process test servers, so tests can forge expired tokens."""


SERVER_PORTS = range(20_000, 32_000)
"""Below Linux's ephemeral range (32768-60999): a port picked for a server here is never
taken meanwhile as the source port of some outgoing connection (a benchmark or a test
opening thousands of them made a picked port busy by the time the server bound it)."""


def free_port() -> int:
    """A port that is free now, for a server about to start on it."""
    while True:
        port = random.choice(SERVER_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


@dataclass
class LiveServer:
    base_url: str
    ws_url: str
    http: httpx.AsyncClient = field(repr=False)
    state: AppState = field(repr=False)
    """The running app's state (same process, same loop): for tests that count internals."""

    async def ws(self, credential: str | None = ADMIN_KEY, **kwargs: Any) -> WsClient:
        """A WebSocket client, with the admin key unless given another credential (or None)."""
        if credential is not None:
            kwargs.setdefault("additional_headers", {"Authorization": f"Bearer {credential}"})
        return WsClient(await connect(self.ws_url, **kwargs))

    async def create_board(self, slug: str, **fields: Any) -> dict[str, Any]:
        response = await self.http.post("/api/boards", json={"slug": slug, **fields})
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def put_widget(self, slug: str, key: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("kind", "number")
        response = await self.http.put(f"/api/boards/{slug}/widgets/{key}", json=fields)
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        return body

    async def set_value(self, slug: str, key: str, value: Any) -> dict[str, Any]:
        response = await self.http.patch(f"/api/boards/{slug}/widgets/{key}", json={"value": value})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


class WsClient:
    """A WebSocket client that speaks JSON frames, each checked against the server's
    AsyncAPI document (tests/asyncapi.py): a frame it does not describe fails the test."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def send(self, frame: dict[str, Any] | str) -> None:
        """Send a frame: an object must be a valid client frame; text goes as it is (to
        send what the document does not allow)."""
        if not isinstance(frame, str):
            check_client_frame(frame)
            frame = orjson.dumps(frame).decode()
        await self.connection.send(frame)

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.connection.recv(), timeout)
        frame: dict[str, Any] = orjson.loads(raw)
        check_server_frame(frame)
        return frame

    async def subscribe(self, slug: str, since: int | None = None, **extra: Any) -> dict[str, Any]:
        """Subscribe and return the `subscribed` reply."""
        frame: dict[str, Any] = {"type": "subscribe", "channel": f"board:{slug}", **extra}
        if since is not None:
            frame["since"] = since
        await self.send(frame)
        reply = await self.recv()
        assert reply["type"] == "subscribed", reply
        return reply

    async def events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The next `count` event frames (other frames are skipped)."""
        found: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            frame = await self.recv(timeout=max(0.01, deadline - time.monotonic()))
            if frame["type"] == "event":
                found.append(frame)
        return found

    async def close(self) -> None:
        await self.connection.close()

    async def closed_with(self, timeout: float = 5.0) -> int:
        """Read until the server closes the connection; its close code."""
        return (await self.read_until_closed(timeout))[1]

    async def read_until_closed(self, timeout: float = 5.0) -> tuple[list[dict[str, Any]], int]:
        """Every frame until the server closes the connection, and the close code."""
        frames: list[dict[str, Any]] = []
        try:
            while True:
                frames.append(await self.recv(timeout))
        except ConnectionClosed as closed:
            received = closed.rcvd
        assert received is not None, "closed without a close frame"
        return frames, received.code


@contextlib.asynccontextmanager
async def start_server(settings: Settings) -> AsyncIterator[LiveServer]:
    """Run the app on a real uvicorn server in this event loop, on a free port."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        **{**server_options(settings), "log_level": "warning"},
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    base = f"http://127.0.0.1:{port}"
    try:
        headers = {"Authorization": f"Bearer {settings.admin_key}"} if settings.admin_key else {}
        async with httpx.AsyncClient(base_url=base, timeout=10, headers=headers) as http:
            state = server.lifespan.state["switchboard"]
            yield LiveServer(base, f"ws://127.0.0.1:{port}/ws", http, state)
    finally:
        await stop_server(server, task)


STOP_TIMEOUT = 30.0
"""An in-process server must stop within this (its drain and cleanup are bounded well below)."""


async def stop_server(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    """Stop an in-process server; if it hangs, fail with what every task was waiting on."""
    server.should_exit = True
    done, _ = await asyncio.wait({task}, timeout=STOP_TIMEOUT)
    if done:
        task.result()
        return
    stacks = io.StringIO()
    for pending in asyncio.all_tasks():
        if pending is not asyncio.current_task():
            print(f"--- {pending!r}", file=stacks)
            pending.print_stack(file=stacks)
    server.force_exit = True
    task.cancel()
    raise AssertionError(
        f"the server did not stop within {STOP_TIMEOUT} s; tasks:\n{stacks.getvalue()}"
    )


@dataclass
class ServerProcess:
    """A `switchboard serve` subprocess."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait(5)


async def spawn_server(
    env: Mapping[str, str],
    *,
    workers: int = 1,
    cwd: str | None = None,
    timeout: float = 30.0,
    admin_key: str | None = ADMIN_KEY,
    log: Path | None = None,
    port: int | None = None,
) -> ServerProcess:
    """Start `switchboard serve` as its own process group and wait until it answers."""
    port = port or free_port()
    env = {"SWITCHBOARD_WRITE_RATE_LIMIT": "0", **env}  # the limit has its own tests
    if admin_key:
        env["SWITCHBOARD_ADMIN_KEY"] = admin_key
    output = log.open("wb") if log is not None else None  # the app's lines and uvicorn's
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
        env={**os.environ, **env},
        cwd=cwd,
        start_new_session=True,
        stdout=output,
        stderr=output,
    )
    handle = ServerProcess(port, process)
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{handle.base_url}/readyz")).status_code == 200:
                    return handle
            await asyncio.sleep(0.1)
    handle.stop()
    raise RuntimeError("server did not become ready")


async def spawn_servers(env: Mapping[str, str], count: int) -> list[ServerProcess]:
    """`count` server processes started together; if one fails to start, the others are
    stopped before the error is raised (none is left running after the test)."""
    results = await asyncio.gather(
        *(spawn_server(env) for _ in range(count)), return_exceptions=True
    )
    started = [r for r in results if isinstance(r, ServerProcess)]
    for result in results:
        if isinstance(result, BaseException):
            for process in started:
                process.stop()
            raise result
    return started


@contextlib.asynccontextmanager
async def serve_processes(env: Mapping[str, str], count: int) -> AsyncIterator[list[ServerProcess]]:
    """`count` server processes started together, all stopped at the end."""
    started = await spawn_servers(env, count)
    try:
        yield started
    finally:
        for process in started:
            process.stop()


def spawn_redis(port: int, *args: str) -> subprocess.Popen[bytes]:
    """A `redis-server` on loopback `port` (no persistence, more options in `args`),
    returned once it accepts connections."""
    process = subprocess.Popen(
        [
            *("redis-server", "--bind", "127.0.0.1", "--port", str(port)),
            *("--save", "", "--appendonly", "no", "--daemonize", "no", *args),
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
            return process
        time.sleep(0.02)
    process.kill()
    process.wait(5)
    raise RuntimeError(f"redis-server on port {port} did not start")


class RedisServer:
    """A throwaway `redis-server` on its own port, which a test may stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = spawn_redis(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def freeze(self, frozen: bool = True) -> None:
        """Stop (SIGSTOP) or resume it: a Redis that accepts nothing and refuses nothing,
        like one behind a partition, so clients wait for their timeouts."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)


def raw_websocket(
    port: int, path: str, credential: str = ADMIN_KEY, *, rcvbuf: int | None = None
) -> socket.socket:
    """A WebSocket handshake on a bare socket: a client that answers nothing (no pong, no
    close) and reads only what the test reads."""
    sock = socket.socket()
    if rcvbuf is not None:  # set before connecting: it sizes the window the server sees
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {credential}\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def masked_text(text: str) -> bytes:
    """One short client text frame (masked, as RFC 6455 requires of clients)."""
    payload = text.encode()
    mask = os.urandom(4)
    assert len(payload) < 126
    return (
        bytes([0x81, 0x80 | len(payload)])
        + mask
        + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    )


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll state that nothing signals (another process, a socket) until it holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


@dataclass
class SseMessage:
    event: str
    id: int | None
    data: dict[str, Any]


class SseStream:
    """Reads an SSE response message by message (comments are kept in `comments`), each
    checked against the server's AsyncAPI document."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self, timeout: float = 5.0) -> SseMessage:
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> SseMessage:
        fields: dict[str, str] = {}
        async for line in self.lines:
            if line == "":
                if "data" in fields:
                    seq = fields.get("id")
                    data = orjson.loads(fields["data"])
                    check_sse_message(fields.get("event", "message"), seq, data)
                    return SseMessage(
                        fields.get("event", "message"),
                        int(seq) if seq is not None else None,
                        data,
                    )
                fields.clear()
            elif line.startswith(":"):
                self.comments.append(line)
            else:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
        raise EOFError("stream ended")

    async def events(self, count: int, timeout: float = 10.0) -> list[SseMessage]:
        found: list[SseMessage] = []
        deadline = time.monotonic() + timeout
        while len(found) < count:
            message = await self.next(max(0.01, deadline - time.monotonic()))
            if message.event == "message":
                found.append(message)
        return found


@contextlib.asynccontextmanager
async def sse(
    http: httpx.AsyncClient, url: str, headers: Mapping[str, str] | None = None
) -> AsyncIterator[SseStream]:
    """Open an SSE stream (status checked) and close it at the end."""
    async with http.stream("GET", url, headers=headers, timeout=None) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield SseStream(response)


def metric(text: str, name: str) -> float:
    """One sample's value from a Prometheus text exposition."""
    for line in text.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    raise KeyError(name)


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


@dataclass
class _Link:
    """One proxied connection: both ends, whether bytes still flow, and the two pumps."""

    ends: tuple[asyncio.StreamWriter, asyncio.StreamWriter]
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    def close(self) -> None:
        for task in self.pumps:
            task.cancel()
        for end in self.ends:
            end.close()


async def _pump(
    source: asyncio.StreamReader, sink: asyncio.StreamWriter, flowing: asyncio.Event
) -> None:
    """Copy bytes one way while `flowing` is set; hold them (without closing) while not."""
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            await flowing.wait()
            sink.write(data)
            await sink.drain()
    sink.close()


class LoopbackServer:
    """A TCP server of a test's own on 127.0.0.1, on a free port; each connection is
    handed to `_accept`. The proxies and pages the tests put beside a server."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    origin = base_url
    """What a browser calls the pages this server serves."""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class StallingProxy(LoopbackServer):
    """A TCP proxy on loopback in front of a server, for a network path that dies without
    saying so: `stall()` stops every connection open now from forwarding either way, and
    does not close it (so no peer hears a thing), while later connections flow normally;
    `cut()` then closes the stalled ones, as a network eventually reports a dead path."""

    def __init__(self, target_port: int) -> None:
        super().__init__()
        self.target_port = target_port
        self._links: list[_Link] = []
        self._stalled: list[_Link] = []

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        link = _Link((writer, upstream))
        link.flowing.set()
        link.pumps = [
            asyncio.create_task(_pump(reader, upstream, link.flowing)),
            asyncio.create_task(_pump(upstream_reader, writer, link.flowing)),
        ]
        self._links.append(link)

    def stall(self) -> None:
        """Every connection open now goes silent both ways, and stays open."""
        for link in self._links:
            link.flowing.clear()
        self._stalled.extend(self._links)
        self._links = []

    def cut(self) -> None:
        """Close the stalled connections (each peer sees its connection end, no more)."""
        for link in self._stalled:
            link.close()
        self._stalled = []

    async def close(self) -> None:
        self.stall()
        self.cut()
        await super().close()


READY_FOR_QUERY = b"Z\x00\x00\x00\x05"
"""PostgreSQL's ReadyForQuery message (type, length 5; its status byte follows): the
server has finished with what it was sent, a COMMIT or an autocommitted statement
included."""


class AnswerLosingProxy(LoopbackServer):
    """A TCP proxy on loopback in front of PostgreSQL that loses one answer: armed with
    `arm(marker, then=…)`, it lets the connection that sends `marker` go on until it
    sends a chunk holding `then` (the marker's own chunk, if `then` is None), forwards
    that chunk, waits until PostgreSQL has answered it in full (ReadyForQuery), and then
    closes both sockets without forwarding that answer: a connection that dies after the
    commit (a failover, a network cut, a pooler restart). With `forward=False` it closes
    them instead of forwarding that chunk: a connection that dies before the statement
    reached PostgreSQL. `fired` is set when it has."""

    def __init__(self, target_port: int) -> None:
        super().__init__()
        self.target_port = target_port
        self.fired = asyncio.Event()
        self._marker: bytes | None = None
        self._then: bytes | None = None
        self._forward = True
        self._links: list[_Link] = []

    def arm(self, marker: bytes, then: bytes | None = None, *, forward: bool = True) -> None:
        self._marker, self._then, self._forward = marker, then, forward
        self.fired.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        link = _Link((writer, upstream))
        self._links.append(link)
        cutting = asyncio.Event()
        link.pumps = [
            asyncio.create_task(self._outgoing(reader, upstream, cutting, link)),
            asyncio.create_task(_answers(upstream_reader, writer, cutting, link, self.fired)),
        ]

    async def _outgoing(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        cutting: asyncio.Event,
        link: _Link,
    ) -> None:
        """Client to PostgreSQL; on the armed chunk, the answer's pump is told to cut (or,
        not forwarding, both ends are closed here)."""
        seen = False
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                marker = self._marker
                if marker is not None and not seen and marker in data:
                    seen = True
                    if self._then is None:
                        self._then = marker
                if seen and self._then is not None and self._then in data:
                    self._marker = self._then = None  # one answer lost, then it disarms
                    if not self._forward:
                        for end in link.ends:
                            end.close()
                        self.fired.set()
                        return
                    cutting.set()
                sink.write(data)
                await sink.drain()
        sink.close()

    async def close(self) -> None:
        for link in self._links:
            link.close()
        await super().close()


async def _answers(
    source: asyncio.StreamReader,
    sink: asyncio.StreamWriter,
    cutting: asyncio.Event,
    link: _Link,
    fired: asyncio.Event,
) -> None:
    """PostgreSQL to the client, until `cutting`: then the answer is read in full and
    dropped, and both sockets are closed."""
    held = b""
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            if cutting.is_set():
                held += data
                if READY_FOR_QUERY in held:
                    for end in link.ends:
                        end.close()
                    fired.set()
                    return
                continue
            sink.write(data)
            await sink.drain()
    sink.close()
