"""Unit tier (`uv run pytest tests/unit`, seconds, no server): one `Subscription`, fed
by hand as a channel would feed it: the buffer while its snapshot is sent, the handoff
to live, gaps, access changes and presence notices."""

from __future__ import annotations

import orjson

from switchboard.auth.principal import ANONYMOUS, Principal, Role
from switchboard.realtime.codes import CloseCode
from switchboard.realtime.connection import Connection, Subscription
from switchboard.realtime.hub import BoardChange, Run
from switchboard.realtime.transport import Transport
from tests.unit.twins import CHANNEL, SLUG, frame, queued

READER = Principal("key", Role.READ, boards=frozenset({SLUG}), key_id="k1")
PRIVATE = BoardChange(SLUG, public=False, live=True)
PUBLIC = BoardChange(SLUG, public=True, live=True)
DELETED = BoardChange(SLUG, public=False, live=False)


class Lost:
    """Records `on_lost` calls, as the subscriber's unsubscribe would."""

    def __init__(self) -> None:
        self.calls: list[Subscription] = []

    def __call__(self, subscription: Subscription) -> None:
        self.calls.append(subscription)


def subscription(
    principal: Principal = ANONYMOUS, max_queue: int = 50
) -> tuple[Subscription, Lost]:
    lost = Lost()
    connection = Connection(Transport(), max_queue=max_queue, principal=principal)
    return Subscription(connection, CHANNEL, lost), lost


def deliver(sub: Subscription, seq: int, change: BoardChange | None = None) -> None:
    event = {None: "widget.updated", PRIVATE: "board.updated", PUBLIC: "board.updated"}
    name = event.get(change, "board.deleted")
    wire = f"wire-{seq}".encode()
    sub.deliver(Run.of([(seq, frame(seq, name), wire, change)]))


async def seqs(sub: Subscription) -> list[int | None]:
    return [
        None if text is None else orjson.loads(text)["seq"] for text in await queued(sub.connection)
    ]


async def test_events_buffer_until_live_then_flush_past_the_snapshot() -> None:
    sub, _ = subscription()
    for seq in (1, 2, 3, 4):
        deliver(sub, seq)
    assert sub.connection.queue.empty()
    await sub.go_live(2)  # the snapshot covered up to 2
    assert sub.pending is None
    assert sub.position == 4
    assert await seqs(sub) == [3, 4]
    deliver(sub, 4)  # a duplicate of the flushed tail
    deliver(sub, 5)
    assert await seqs(sub) == [5]


async def test_a_buffer_longer_than_the_queue_is_a_slow_consumer() -> None:
    sub, _ = subscription(max_queue=3)
    for seq in range(1, 5):
        deliver(sub, seq)
    assert sub.pending is None
    assert sub.connection.close_code == CloseCode.SLOW_CONSUMER


async def test_live_events_at_or_before_the_position_are_dropped() -> None:
    sub, _ = subscription()
    await sub.go_live(5)
    for seq in (3, 5, 6, 6, 7):
        deliver(sub, seq)
    assert await seqs(sub) == [6, 7]


async def test_a_gap_closes_with_try_again_later() -> None:
    sub, _ = subscription()
    await sub.go_live(1)
    deliver(sub, 3)
    assert sub.connection.close_code == CloseCode.TRY_AGAIN_LATER
    assert await seqs(sub) == [None]


async def test_a_gap_in_the_buffer_closes_when_going_live() -> None:
    sub, _ = subscription()
    deliver(sub, 2)
    deliver(sub, 4)
    await sub.go_live(1)
    assert sub.connection.close_code == CloseCode.TRY_AGAIN_LATER


async def test_a_board_made_private_is_lost_to_an_anonymous_viewer() -> None:
    sub, lost = subscription()
    await sub.go_live(0)
    deliver(sub, 1, PUBLIC)
    deliver(sub, 2, PRIVATE)
    assert lost.calls == [sub]
    assert await seqs(sub) == [1]  # the change itself is not shown
    assert sub.connection.close_code is None  # only this subscription ends


async def test_a_private_board_stays_visible_to_a_credential_in_scope() -> None:
    sub, lost = subscription(READER)
    await sub.go_live(0)
    deliver(sub, 1, PRIVATE)
    deliver(sub, 2)
    assert lost.calls == []
    assert await seqs(sub) == [1, 2]


async def test_a_change_in_the_buffer_stops_the_flush() -> None:
    sub, lost = subscription()
    deliver(sub, 1)
    deliver(sub, 2, PRIVATE)
    deliver(sub, 3)
    await sub.go_live(0)
    assert lost.calls == [sub]
    assert await seqs(sub) == [1]  # nothing after the change goes out


async def test_a_deletion_is_delivered_then_the_subscription_is_lost() -> None:
    for principal in (ANONYMOUS, READER):
        sub, lost = subscription(principal)
        await sub.go_live(0)
        deliver(sub, 1, DELETED)
        assert lost.calls == [sub]
        [deleted] = await queued(sub.connection)
        assert deleted is not None
        assert orjson.loads(deleted)["event"] == "board.deleted"


async def test_presence_is_opt_in_and_only_once_live() -> None:
    sub, _ = subscription(READER)
    sub.notice("full", "public")
    sub.wants_presence = True
    sub.notice("full", "public")  # still sending its snapshot
    assert sub.connection.queue.empty()
    await sub.go_live(0)
    sub.notice("full", "public")
    assert await queued(sub.connection) == ["full"]


async def test_anonymous_viewers_get_only_the_public_presence_frame() -> None:
    sub, _ = subscription(ANONYMOUS)
    sub.wants_presence = True
    await sub.go_live(0)
    sub.notice("full", "public")
    sub.notice("full only", None)  # nothing changed for anonymous viewers
    assert await queued(sub.connection) == ["public"]


def run(*seqs: int, change_at: int | None = None) -> Run:
    """A run as a channel builds it; the event at `change_at` makes the board private."""
    return Run.of(
        [
            (
                seq,
                frame(seq, "board.updated" if seq == change_at else "widget.updated"),
                f"wire-{seq}".encode(),
                PRIVATE if seq == change_at else None,
            )
            for seq in seqs
        ]
    )


def fast_subscription(principal: Principal = ANONYMOUS) -> tuple[Subscription, list[bytes]]:
    """A live subscription on a connection whose transport has the fast path."""
    written: list[bytes] = []

    def write(wire: bytes) -> bool:
        written.append(wire)
        return True

    transport = Transport()
    transport.write_now = write
    return Subscription(Connection(transport, max_queue=50, principal=principal), CHANNEL), written


async def test_a_run_in_step_goes_out_in_one_write() -> None:
    sub, written = fast_subscription()
    await sub.go_live(0)
    sub.deliver(run(1, 2, 3))
    assert written == [b"wire-1wire-2wire-3"]
    assert sub.position == 3


async def test_a_run_overlapping_the_snapshot_goes_out_from_past_it() -> None:
    sub, written = fast_subscription()
    await sub.go_live(2)
    sub.deliver(run(1, 2, 3, 4))
    assert written == [b"wire-3", b"wire-4"]
    assert sub.position == 4


async def test_a_run_is_buffered_whole_until_live() -> None:
    sub, _ = subscription()
    sub.deliver(run(1, 2))
    sub.deliver(run(3, 4))
    await sub.go_live(1)
    assert await seqs(sub) == [2, 3, 4]


async def test_a_run_that_makes_the_board_private_stops_at_the_change() -> None:
    sub, written = fast_subscription()
    await sub.go_live(0)
    sub.deliver(run(1, 2, 3, change_at=2))
    assert written == [b"wire-1"]  # the change and what follows never reach this viewer
    sub, written = fast_subscription(READER)
    await sub.go_live(0)
    sub.deliver(run(1, 2, 3, change_at=2))
    assert written == [b"wire-1", b"wire-2", b"wire-3"]  # in scope: every event, checked
