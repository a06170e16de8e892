"""Unit tier (`uv run pytest tests/unit`, seconds, no server): the WebSocket `Writer`
draining a connection's queue, on a stand-in for the ASGI WebSocket and the wire
extension: a backlog goes out coalesced, in order, one write per `MAX_WRITE` bytes."""

from __future__ import annotations

import asyncio
from typing import Any

from switchboard.realtime.connection import Connection
from switchboard.realtime.framing import EXTENSION, MAX_WRITE, text_frame
from switchboard.realtime.transport import Transport
from switchboard.realtime.websocket import WebSocketTransport, Writer
from tests.unit.twins import eventually, frame


class Socket:
    """The ASGI side (`send`) and the wire extension's `write` / `writable`."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.sent: list[str] = []
        self.written: list[bytes] = []
        self.ready = asyncio.Event()
        self.ready.set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ready.wait()
        self.sent.append(message["text"])

    def write(self, wire: bytes) -> bool:
        self.written.append(wire)
        return True

    async def writable(self) -> None:
        await self.ready.wait()


def writer(socket: Socket, connection: Connection, *, wire: bool = True) -> Writer:
    extension = {"write": socket.write, "writable": socket.writable, "close": lambda _: False}
    socket.scope = {"extensions": {EXTENSION: extension} if wire else {}}
    transport = WebSocketTransport(socket)  # type: ignore[arg-type]
    w = Writer(socket, connection, transport, close_timeout=1.0)  # type: ignore[arg-type]
    connection.queue.on_put = w.wake
    return w


async def test_a_backlog_goes_out_in_one_write() -> None:
    socket, connection = Socket(), Connection(Transport(), max_queue=100)
    socket.ready.clear()  # the client is not reading: frames pile up
    writer(socket, connection)
    texts = [frame(seq) for seq in range(1, 6)]
    for text in texts:
        connection.send_nowait(text)
    await asyncio.sleep(0)
    socket.ready.set()
    await eventually(lambda: connection.queue.empty() and not connection.sending)
    # All five were queued before the writer's task first ran: framed here, one write.
    assert socket.written == [b"".join(text_frame(t.encode()) for t in texts)]
    assert socket.sent == []
    assert connection.queued_bytes == 0


async def test_a_backlog_is_cut_at_max_write_and_keeps_order() -> None:
    socket, connection = Socket(), Connection(Transport(), max_queue=1000)
    socket.ready.clear()
    writer(socket, connection)
    texts = [frame(seq, text="x" * 9000) for seq in range(1, 21)]
    for text in texts:
        connection.send_nowait(text)
    socket.ready.set()
    await eventually(lambda: connection.queue.empty() and not connection.sending)
    assert b"".join(socket.written) == b"".join(text_frame(t.encode()) for t in texts)
    assert len(socket.written) > 1
    assert all(len(wire) <= MAX_WRITE + 16 for wire in socket.written)


async def test_a_single_frame_and_the_end_marker_go_through_asgi() -> None:
    socket, connection = Socket(), Connection(Transport(), max_queue=10)
    writer(socket, connection)
    connection.send_nowait(frame(1))
    await eventually(lambda: socket.sent == [frame(1)])
    assert socket.written == []


async def test_without_the_wire_extension_every_frame_goes_through_asgi() -> None:
    socket, connection = Socket(), Connection(Transport(), max_queue=10)
    socket.ready.clear()
    writer(socket, connection, wire=False)
    for seq in (1, 2, 3):
        connection.send_nowait(frame(seq))
    socket.ready.set()
    await eventually(lambda: len(socket.sent) == 3)
    assert socket.sent == [frame(1), frame(2), frame(3)]
    assert socket.written == []


async def test_take_queued_stops_at_the_end_marker_and_the_byte_bound() -> None:
    connection = Connection(Transport(), max_queue=10)
    for seq in (1, 2, 3):
        connection.send_nowait(frame(seq))
    size = len(frame(1))
    assert connection.take_queued(2 * size) == [frame(1), frame(2)]
    connection.finish()
    assert connection.take_queued(10 * size) == [frame(3)]
    assert connection.take_queued(10 * size) == []  # the end marker stays for the writer
    assert connection.queue.head() is None
