"""The `/ws` endpoint and the WebSocket transport: check who connects, then read
frames, dispatch on `type`, answer in order.

Each connection handles its own frames one at a time, in the task uvicorn runs it in, so
replies keep the order of requests; fan-out reaches it through its `Subscription`s
meanwhile. A frame the fan-out fast path could not write is queued, and a `Writer` task
sends it: that task exists only while something is queued, so an idle connection is one
task.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect

from switchboard.auth.authenticator import presented_credential
from switchboard.auth.principal import Principal
from switchboard.errors import Unauthorized
from switchboard.realtime import protocol
from switchboard.realtime.codes import CloseCode
from switchboard.realtime.connection import Connection
from switchboard.realtime.connections import TooManyConnections
from switchboard.realtime.framing import EXTENSION, MAX_WRITE, text_frame
from switchboard.realtime.node import Authenticate, Node
from switchboard.realtime.protocol import (
    Auth,
    Ping,
    PresenceQuery,
    ProtocolError,
    Subscribe,
    Unsubscribe,
)
from switchboard.realtime.subscriber import Subscriber
from switchboard.realtime.transport import Transport
from switchboard.timefmt import iso

log = structlog.get_logger(__name__)


class WebSocketTransport(Transport):
    """Frames as they are; with uvicorn's wire extension (`realtime/wire.py`), pre-built
    event frames written straight to the socket and a close that does not wait."""

    def __init__(self, websocket: WebSocket) -> None:
        wire = websocket.scope.get("extensions", {}).get(EXTENSION)
        self.write_now = wire["write"] if wire is not None else None
        self.writable: Callable[[], Awaitable[None]] | None = (
            wire["writable"] if wire is not None else None
        )
        self.close_now: Callable[[int], bool] | None = wire["close"] if wire is not None else None


def same_key(old: Principal, new: Principal) -> bool:
    """Whether `new` comes from the key behind `old`: that key itself, or a token it
    minted (the bootstrap key and its tokens are one key; anonymous is no key)."""
    if old.kind == "anonymous" or new.kind == "anonymous":
        return False
    return old.key_id == new.key_id


class Handler(Subscriber):
    """The protocol for one connection."""

    def __init__(self, connection: Connection, node: Node) -> None:
        super().__init__(
            connection, hub=node.hub, db=node.db, presence=node.presence, settings=node.settings
        )
        self.authenticate: Authenticate = node.authenticate

    async def reauth(self, token: str, id_: protocol.RequestId) -> None:
        """Replace the connection's credential; the old one stays if the new one is refused.
        Only a credential from the same key may take over (docs/security.md)."""
        try:
            principal = await self.authenticate(token)
        except Unauthorized as exc:
            raise ProtocolError("unauthorized", exc.message, id=id_) from None
        if not same_key(self.connection.principal, principal):
            message = "the new credential must come from the key behind this connection's"
            raise ProtocolError("unauthorized", message, id=id_)
        if self.connection.close_code is not None:
            return
        await self.reauthorize(principal)  # takes effect (and its expiry) before its first await
        expires = principal.expires_at
        expires_at = iso(datetime.fromtimestamp(expires, UTC)) if expires is not None else None
        await self.connection.send(
            protocol.encode({"type": "authed", "expires_at": expires_at}, id_)
        )

    async def handle(self, text: str) -> None:
        try:
            if len(text) > self.settings.ws_max_frame_bytes:
                raise ProtocolError(
                    "frame_too_large", f"frames are limited to {self.settings.ws_max_frame_bytes}"
                )
            message = protocol.parse(text)
            match message:
                case Ping():
                    await self.connection.send(protocol.encode({"type": "pong"}, message.id))
                case Subscribe():
                    await self.subscribe(message.channel, message.slug, message.since, message.id)
                case Unsubscribe():
                    await self.unsubscribe(message.channel, message.id)
                case PresenceQuery():
                    await self.who(message.channel, message.id)
                case Auth():
                    await self.reauth(message.token, message.id)
        except ProtocolError as exc:
            await self.connection.send(protocol.error(exc.code, exc.message, exc.id))


def origin_allowed(websocket: WebSocket, allowed: list[str]) -> bool:
    """Non-browser clients send no Origin; a browser's must be ours or an allowed one."""
    origin = websocket.headers.get("origin")
    if origin is None or "*" in allowed or origin.rstrip("/") in allowed:
        return True
    host = websocket.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/") == host


class Writer:
    """Sends a connection's queued frames, in a task started by the first frame queued
    and ended once the queue is empty; a backlog (a client that fell behind, events that
    came while the socket was full) goes out coalesced, one write for many frames. A
    connection the server closes (slow consumer, revoked key, shutdown) has its queue
    dropped; its close frame then goes out right
    behind the last data frame the transport holds (`wire.close_now`), every time, however
    slowly the client reads, and the reader sees the disconnect. Without the wire extension
    the close goes through ASGI, given `close_timeout` to get past what the client has not
    read yet, after which the connection's own task is cancelled."""

    __slots__ = ("close_timeout", "connection", "gave_up", "main", "task", "transport", "websocket")

    def __init__(
        self,
        websocket: WebSocket,
        connection: Connection,
        transport: WebSocketTransport,
        *,
        close_timeout: float,
    ) -> None:
        self.websocket = websocket
        self.connection = connection
        self.transport = transport
        """With the wire extension, a backlog goes out framed here, one write per
        `MAX_WRITE` bytes once the socket takes writes again, and a close goes straight
        into the socket (`close_now`); without it, both go through ASGI."""
        self.close_timeout = close_timeout
        self.main = asyncio.current_task()
        """The connection's own task (it reads the client's frames)."""
        self.task: asyncio.Task[None] | None = None
        self.gave_up = False
        """The close did not get out within `close_timeout`: the connection's task was
        cancelled by this writer, not by the server."""

    def wake(self) -> None:
        """A frame was queued (`Outbox.on_put`): send it, or close."""
        connection = self.connection
        code = connection.close_code
        close_now = self.transport.close_now
        if code is not None and close_now is not None:
            task, self.task = self.task, None
            if task is not None:
                task.cancel()  # what it took and has not written yet is dropped with the queue
            if close_now(code):
                connection.close_sent()
            return
        if self.task is None:
            self.task = asyncio.get_running_loop().create_task(self._run(), name="ws writer")
            if code is not None:
                asyncio.get_running_loop().call_later(self.close_timeout, self._give_up)

    def _give_up(self) -> None:
        if self.main is not None and not self.main.done():
            self.gave_up = True
            self.main.cancel()

    async def _run(self) -> None:
        connection, send = self.connection, self.websocket.send
        try:
            while not connection.queue.empty():
                frame = await connection.next_frame()  # at once: the queue is not empty
                if frame is None:
                    with contextlib.suppress(OSError, RuntimeError):
                        await self.websocket.close(connection.close_code or CloseCode.NORMAL)
                        connection.close_sent()
                    return
                connection.sending = True
                write, writable = self.transport.write_now, self.transport.writable
                more = connection.take_queued(MAX_WRITE - len(frame)) if writable else []
                if more and write is not None and writable is not None:
                    await writable()  # as ASGI `send` waits
                    frames = b"".join(text_frame(text.encode()) for text in (frame, *more))
                    if not write(frames):
                        return  # closing: the close path sends what follows
                else:
                    await send({"type": "websocket.send", "text": frame})
                connection.sending = False
        except (WebSocketDisconnect, OSError, RuntimeError):
            return  # the client went away; the reader notices and cleans up
        finally:
            connection.sending = False
            if self.task is asyncio.current_task():
                self.task = None

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _refuse(websocket: WebSocket, code: CloseCode, kind: str, message: str) -> None:
    """Say why, in an `error` frame a browser can read, then close."""
    await websocket.send_text(protocol.error(kind, message))
    await websocket.close(code)


async def _authenticate(websocket: WebSocket, node: Node) -> Principal | None:
    try:
        credential = presented_credential(
            websocket.headers.get("authorization"), websocket.query_params.get("token")
        )
        return await node.authenticate(credential)
    except Unauthorized as exc:
        await websocket.accept()
        await _refuse(websocket, CloseCode.UNAUTHORIZED, "unauthorized", exc.message)
        return None


async def websocket_endpoint(websocket: WebSocket) -> None:
    node: Node = websocket.state.realtime
    if not origin_allowed(websocket, node.settings.allowed_origins):
        await websocket.close(CloseCode.FORBIDDEN)  # before accept: the handshake gets 403
        return
    if not node.hub.ready:  # starting up: the broker subscription is not there yet
        await websocket.close(CloseCode.TRY_AGAIN_LATER)
        return
    principal = await _authenticate(websocket, node)
    if principal is None:
        return
    await websocket.accept()
    transport = WebSocketTransport(websocket)
    host = websocket.client.host if websocket.client else None
    try:
        async with node.connections.open(principal, host, transport) as connection:
            await _serve(websocket, node, connection, transport)
    except TooManyConnections:
        message = "too many connections for this credential"
        await _refuse(websocket, CloseCode.TOO_MANY_CONNECTIONS, "too_many_connections", message)


async def _serve(
    websocket: WebSocket, node: Node, connection: Connection, transport: WebSocketTransport
) -> None:
    """Read the client's frames in this task until either side ends the connection; a
    `Writer` sends what is queued meanwhile."""
    handler = Handler(connection, node)
    writer = Writer(websocket, connection, transport, close_timeout=node.settings.ws_close_timeout)
    connection.queue.on_put = writer.wake
    try:
        if not connection.queue.empty():  # closed already (a stopping worker)
            writer.wake()
        await _read(websocket, node, handler)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if not writer.gave_up or task is None or task.uncancel() > 0:
            raise
    finally:
        connection.queue.on_put = None
        handler.close()
        await writer.stop()


async def _read(websocket: WebSocket, node: Node, handler: Handler) -> None:
    """Handle the client's frames in order; return when it leaves or breaks the rules."""
    connection = handler.connection
    limit, window, frames = node.settings.ws_max_frames_per_second, 0, 0
    try:
        while connection.close_code is None:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            now = int(time.monotonic())
            frames = frames + 1 if now == window else 1
            window = now
            if frames > limit:
                connection.close(CloseCode.POLICY_VIOLATION)
                return
            text = message.get("text")
            if text is None:
                await connection.send(protocol.error("invalid_frame", "send JSON text frames"))
                continue
            await handler.handle(text)
    except (WebSocketDisconnect, RuntimeError):
        return
    except Exception:
        log.exception("websocket_handler_failed")
        connection.close(CloseCode.INTERNAL_ERROR)
