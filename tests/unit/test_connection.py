"""Unit tier (`uv run pytest tests/unit`, seconds, no server): one `Connection` and its
transports, driven directly: the queue's bounds, awaited sends, the fan-out fast path,
closing and finishing, and what the SSE transport makes of each frame."""

from __future__ import annotations

import asyncio

import orjson

from switchboard.metrics import METRICS
from switchboard.realtime.codes import CloseCode
from switchboard.realtime.connection import Connection
from switchboard.realtime.sse import SseTransport
from switchboard.realtime.transport import Transport
from tests.unit.twins import CHANNEL, frame, queued

SLOW = "switchboard_slow_consumer_disconnects_total"


class FastTransport(Transport):
    """A transport with a fast path that records what it wrote, and can refuse."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.accepts = True
        self.write_now = self.write

    def write(self, wire: bytes) -> bool:
        if self.accepts:
            self.written.append(wire)
        return self.accepts


def slow_consumers() -> float:
    return METRICS.registry.get_sample_value(SLOW) or 0.0


async def test_the_message_bound_cuts_a_slow_consumer() -> None:
    connection = Connection(Transport(), max_queue=2)
    connection.send_nowait("a")
    connection.send_nowait("b")
    assert connection.close_code is None
    connection.send_nowait("c")
    assert connection.close_code == CloseCode.SLOW_CONSUMER
    assert connection.closed.is_set()
    assert await queued(connection) == [None]  # the backlog is dropped, not sent
    assert connection.queued_bytes == 0


async def test_the_byte_bound_cuts_a_slow_consumer() -> None:
    connection = Connection(Transport(), max_queue=100, max_bytes=10)
    connection.send_nowait("12345")
    connection.send_nowait("12345")  # exactly the bound
    assert connection.queued_bytes == 10
    assert connection.close_code is None
    connection.send_nowait("1")
    assert connection.close_code == CloseCode.SLOW_CONSUMER
    assert await queued(connection) == [None]


async def test_the_byte_count_follows_what_the_transport_takes() -> None:
    connection = Connection(Transport(), max_queue=100, max_bytes=10)
    connection.send_nowait("12345678")
    assert await connection.next_frame() == "12345678"
    connection.send_nowait("12345678")  # room again once the first was taken
    assert connection.close_code is None
    assert connection.queued_bytes == 8


async def test_nothing_is_queued_after_close() -> None:
    connection = Connection(Transport(), max_queue=10)
    connection.close(CloseCode.UNAUTHORIZED)
    connection.send_nowait("late")
    connection.close(CloseCode.SLOW_CONSUMER)  # the first code stays
    assert connection.close_code == CloseCode.UNAUTHORIZED
    assert await connection.next_frame() is None
    assert connection.queue.empty()


async def test_send_waits_for_room_until_the_transport_drains() -> None:
    """Awaited sends use half the queue, leaving the rest for live fan-out."""
    connection = Connection(Transport(), max_queue=4)
    await connection.send("a")
    await connection.send("b")
    third = asyncio.create_task(connection.send("c"))
    await asyncio.sleep(0.01)
    assert not third.done()
    connection.send_nowait("live")  # fan-out still fits beside the waiting send
    assert connection.close_code is None
    assert await connection.next_frame() == "a"
    await asyncio.sleep(0.01)
    assert not third.done()  # "b" and "live" still fill the awaited half
    assert await connection.next_frame() == "b"
    await asyncio.wait_for(third, 1)
    assert await queued(connection) == ["live", "c"]


async def test_send_waits_for_bytes_and_a_large_frame_goes_alone() -> None:
    connection = Connection(Transport(), max_queue=100, max_bytes=20)
    await connection.send("x" * 8)
    waiting = asyncio.create_task(connection.send("y" * 8))  # 16 > half of 20
    await asyncio.sleep(0.01)
    assert not waiting.done()
    assert await connection.next_frame() == "x" * 8
    await asyncio.wait_for(waiting, 1)
    assert await connection.next_frame() == "y" * 8
    await asyncio.wait_for(connection.send("z" * 30), 1)  # larger than the half: alone
    assert await queued(connection) == ["z" * 30]


async def test_a_waiting_send_gives_up_when_the_connection_closes() -> None:
    connection = Connection(Transport(), max_queue=2)
    await connection.send("a")
    waiting = asyncio.create_task(connection.send("b"))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    connection.close(CloseCode.SERVICE_RESTART)
    await asyncio.wait_for(waiting, 1)
    assert await queued(connection) == [None]


async def test_send_events_writes_straight_away_when_nothing_is_queued() -> None:
    transport = FastTransport()
    connection = Connection(transport, max_queue=10)
    connection.send_events(((1, frame(1), b"wire-1", None),), b"wire-1")
    assert transport.written == [b"wire-1"]
    assert connection.queue.empty()


async def test_send_events_queues_behind_a_backlog_and_keeps_order() -> None:
    transport = FastTransport()
    connection = Connection(transport, max_queue=10)
    connection.send_nowait("reply")
    connection.send_events(((1, frame(1), b"wire-1", None),), b"wire-1")
    connection.send_events(((2, frame(2), b"wire-2", None),), b"wire-2")
    assert transport.written == []
    assert await queued(connection) == ["reply", frame(1), frame(2)]
    connection.send_events(
        ((3, frame(3), b"wire-3", None),), b"wire-3"
    )  # drained: the fast path again
    assert transport.written == [b"wire-3"]


async def test_send_events_queues_while_sending_or_when_the_transport_refuses() -> None:
    transport = FastTransport()
    connection = Connection(transport, max_queue=10)
    connection.sending = True
    connection.send_events(((1, frame(1), b"wire-1", None),), b"wire-1")
    connection.sending = False
    assert await queued(connection) == [frame(1)]
    transport.accepts = False
    connection.send_events(((2, frame(2), b"wire-2", None),), b"wire-2")
    assert await queued(connection) == [frame(2)]
    assert transport.written == []


async def test_send_events_writes_nothing_once_closed() -> None:
    transport = FastTransport()
    connection = Connection(transport, max_queue=10)
    connection.close(CloseCode.NORMAL)
    connection.send_events(((1, frame(1), b"wire-1", None),), b"wire-1")
    assert transport.written == []
    assert await queued(connection) == [None]


async def test_close_drops_the_queue_and_ends_the_stream() -> None:
    connection = Connection(Transport(), max_queue=10)
    connection.send_nowait("a")
    connection.send_nowait("b")
    connection.close(CloseCode.TRY_AGAIN_LATER)
    assert connection.close_code == CloseCode.TRY_AGAIN_LATER
    assert await asyncio.wait_for(connection.next_frame(), 1) is None
    assert connection.queue.empty()


async def test_finish_delivers_what_is_queued_then_ends() -> None:
    connection = Connection(Transport(), max_queue=10)
    connection.send_nowait("a")
    connection.send_nowait("b")
    connection.finish()
    connection.send_nowait("after")
    assert connection.close_code == CloseCode.NORMAL
    assert connection.closed.is_set()
    assert await queued(connection) == ["a", "b", None]


async def test_finish_on_a_full_queue_closes_instead() -> None:
    connection = Connection(Transport(), max_queue=2)
    connection.send_nowait("a")
    connection.send_nowait("b")
    connection.finish()
    assert connection.close_code == CloseCode.NORMAL
    assert await queued(connection) == [None]


async def test_a_slow_consumer_counts_only_once_its_close_was_sent() -> None:
    before = slow_consumers()
    connection = Connection(Transport(), max_queue=1)
    connection.send_nowait("a")
    connection.send_nowait("b")
    assert connection.close_code == CloseCode.SLOW_CONSUMER
    assert slow_consumers() == before
    connection.close_sent()
    assert slow_consumers() == before + 1


async def test_other_closes_are_not_counted_as_slow_consumers() -> None:
    before = slow_consumers()
    for close in (CloseCode.NORMAL, CloseCode.SERVICE_RESTART):
        connection = Connection(Transport(), max_queue=1)
        connection.close(close)
        connection.close_sent()
    finished = Connection(Transport(), max_queue=1)
    finished.finish()
    finished.close_sent()
    assert slow_consumers() == before


async def test_sse_formats_live_events_with_their_seq() -> None:
    connection = Connection(SseTransport(), max_queue=10)
    assert connection.write_frame is None  # no fast path: every event is queued
    connection.send_events(((7, frame(7), b"ignored", None),), b"ignored")
    assert await queued(connection) == [f"id: 7\ndata: {frame(7)}\n\n"]


async def test_sse_formats_replies_by_their_type() -> None:
    connection = Connection(SseTransport(), max_queue=10)
    subscribed = orjson.dumps({"type": "subscribed", "channel": CHANNEL, "seq": 3}).decode()
    snapshot = orjson.dumps({"type": "snapshot", "channel": CHANNEL, "seq": 3}).decode()
    reset = orjson.dumps({"type": "reset", "channel": CHANNEL}).decode()
    for reply in (subscribed, snapshot, reset, frame(4)):
        await connection.send(reply)
    assert await queued(connection) == [  # `subscribed` is implicit in SSE
        f"event: snapshot\nid: 3\ndata: {snapshot}\n\n",
        f"event: reset\ndata: {reset}\n\n",
        f"id: 4\ndata: {frame(4)}\n\n",
    ]


async def test_sse_lost_access_ends_the_stream_after_what_is_queued() -> None:
    connection = Connection(SseTransport(), max_queue=10)
    connection.send_events(((5, frame(5, "board.deleted"), b"", None),), b"")
    connection.transport.lost_access(connection, CHANNEL)
    assert connection.close_code == CloseCode.NORMAL
    assert await queued(connection) == [f"id: 5\ndata: {frame(5, 'board.deleted')}\n\n", None]


async def test_websocket_lost_access_is_an_error_frame_and_the_connection_goes_on() -> None:
    connection = Connection(Transport(), max_queue=10)
    connection.transport.lost_access(connection, CHANNEL)
    assert connection.close_code is None
    [error] = await queued(connection)
    assert error is not None
    assert orjson.loads(error) == {
        "type": "error",
        "code": "not_found",
        "message": f"{CHANNEL} is no longer readable by this connection",
        "channel": CHANNEL,
    }
