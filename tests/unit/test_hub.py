"""Unit tier (`uv run pytest tests/unit`, seconds, no server): the `Hub` on its memory
twins (`MemoryBroker`, a SQLite store): events are committed to the store and published
the way the app writes them, and every sink sees a gapless, in-order, duplicate-free
stream, however many notifications were lost."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from switchboard.broker.memory import MemoryBroker
from switchboard.metrics import METRICS
from switchboard.realtime.framing import text_frame
from switchboard.realtime.hub import (
    FANOUT_SLICE,
    RUN_MAX_BYTES,
    RUN_MAX_EVENTS,
    BoardChange,
    Hub,
    Run,
)
from switchboard.realtime.publisher import Publisher
from switchboard.store import boards
from switchboard.store.db import Database
from switchboard.store.widgets import put_widget
from tests.unit.twins import (
    CHANNEL,
    SLUG,
    RecordingSink,
    create_board,
    eventually,
    set_public,
    set_text,
)


async def joined(hub: Hub, count: int) -> list[RecordingSink]:
    """`count` sinks joined to the board's channel."""
    sinks = [RecordingSink() for _ in range(count)]
    for sink in sinks:
        await hub.join(CHANNEL, sink)
    return sinks


def counter(name: str) -> float:
    return METRICS.registry.get_sample_value(f"switchboard_{name}_total") or 0.0


def lag(part: str) -> float:
    return METRICS.registry.get_sample_value(f"switchboard_delivery_lag_seconds_{part}") or 0.0


async def test_published_events_reach_every_sink_in_order(
    hub: Hub, db: Database, publisher: Publisher
) -> None:
    first, second = await joined(hub, 2)
    for i in range(5):
        await set_text(db, publisher, f"v{i}")
    await eventually(lambda: len(second.seqs) == 5)
    assert first.seqs == second.seqs == [1, 2, 3, 4, 5]
    seq, data, wire, change = first.events[4]
    assert seq == 5
    assert data["channel"] == CHANNEL
    assert data["event"] == "widget.updated"
    assert data["data"]["value"] == "v4"
    assert wire == text_frame(orjson.dumps(data))  # the ready WebSocket frame of the same text
    assert change is None


async def test_a_sink_joins_at_the_stores_head(
    hub: Hub, db: Database, publisher: Publisher
) -> None:
    await set_text(db, publisher, "before")  # nobody holds the channel: not delivered
    sink = RecordingSink()
    await hub.join(CHANNEL, sink)
    assert hub.channels[CHANNEL].last_seq == 1
    await set_text(db, publisher, "after")
    await eventually(lambda: sink.seqs == [2])


async def test_a_lost_notification_is_filled_by_the_next_one(
    hub: Hub, db: Database, publisher: Publisher
) -> None:
    sink = RecordingSink()
    await hub.join(CHANNEL, sink)
    fills = counter("gap_fills")
    await set_text(db, publisher, "a")
    await set_text(db, None, "b")  # committed, never published
    await set_text(db, None, "c")
    await set_text(db, publisher, "d")
    await eventually(lambda: len(sink.seqs) == 4)
    assert sink.seqs == [1, 2, 3, 4]
    assert [data["data"]["value"] for _, data, _, _ in sink.events] == ["a", "b", "c", "d"]
    assert counter("gap_fills") == fills + 1


async def test_the_delivery_lag_is_observed_once_per_event_not_per_sink(
    hub: Hub, db: Database, publisher: Publisher
) -> None:
    """Broker and store paths alike: one observation per event forwarded, from the event's
    own timestamp, however many sinks it reached."""
    sinks = await joined(hub, 3)
    count, total = lag("count"), lag("sum")
    started = time.monotonic()
    await set_text(db, publisher, "a")
    await set_text(db, None, "b")  # never published: filled from the store before "c"
    await set_text(db, publisher, "c")
    await eventually(lambda: all(sink.seqs == [1, 2, 3] for sink in sinks))
    assert lag("count") == count + 3
    assert 0 <= lag("sum") - total <= 3 * (time.monotonic() - started) + 0.003  # ms stamps


async def test_the_catch_up_poll_fills_what_was_never_published(hub: Hub, db: Database) -> None:
    sink = RecordingSink()
    await hub.join(CHANNEL, sink)
    fills = counter("catch_up_fills")
    await set_text(db, None, "a")
    await set_text(db, None, "b")
    await asyncio.sleep(0.1)
    assert sink.seqs == []  # no poll yet: nothing told the hub
    hub.start()
    await eventually(lambda: sink.seqs == [1, 2])  # the first poll: the heads of all held
    assert counter("catch_up_fills") > fills
    await set_text(db, None, "c")
    await eventually(lambda: sink.seqs == [1, 2, 3])  # later ones: the boards written since


async def test_a_store_whose_clock_went_back_is_compared_in_full(hub: Hub, db: Database) -> None:
    """A worker's mark from another database (one restored from a dump starts its clock
    again): what was never published still reaches the subscriber."""
    sink = RecordingSink()
    await hub.join(CHANNEL, sink)
    hub._mark = 1 << 62
    await set_text(db, None, "a")
    hub.start()
    await eventually(lambda: sink.seqs == [1])


async def test_duplicates_and_stale_notifications_are_dropped(
    hub: Hub, db: Database, publisher: Publisher, broker: MemoryBroker
) -> None:
    sink = RecordingSink()
    await hub.join(CHANNEL, sink)
    async with db.transaction() as tx:  # two events in one write: published together
        for value in ("a", "b"):
            await put_widget(
                tx, SLUG, "w", kind="text", title="", config={}, value=value, if_match=None
            )
    await publisher.publish(tx.events)
    await publisher.publish(tx.events)  # a redelivery
    await publisher.publish(reversed(tx.events))  # late and out of order
    await set_text(db, publisher, "c")
    await eventually(lambda: 3 in sink.seqs)
    assert sink.seqs == [1, 2, 3]


async def test_board_changes_are_marked_for_the_sinks(
    hub: Hub, db: Database, publisher: Publisher
) -> None:
    sink = RecordingSink()
    await hub.join(CHANNEL, sink)
    await set_public(db, publisher, False)
    await set_text(db, publisher, "x")
    await eventually(lambda: len(sink.seqs) == 2)
    assert [change for *_, change in sink.events] == [
        BoardChange(SLUG, public=False, live=True),
        None,
    ]


async def test_the_last_sink_to_leave_closes_the_channel(
    hub: Hub, db: Database, publisher: Publisher
) -> None:
    first, second = await joined(hub, 2)
    channel = hub.channels[CHANNEL]
    hub.leave(CHANNEL, first)
    assert hub.channels[CHANNEL] is channel
    await set_text(db, publisher, "a")
    await eventually(lambda: second.seqs == [1])
    assert first.seqs == []  # it left
    hub.leave(CHANNEL, second)
    assert CHANNEL not in hub.channels
    await eventually(channel.task.done)
    await set_text(db, publisher, "b")  # nobody listens: the broker does not deliver it
    third = RecordingSink()
    await hub.join(CHANNEL, third)  # a new channel, from the store's head
    assert hub.channels[CHANNEL] is not channel
    assert hub.channels[CHANNEL].last_seq == 2
    assert second.seqs == [1]


async def test_a_channel_for_a_board_not_yet_created(
    hub: Hub, db: Database, publisher: Publisher
) -> None:
    sink = RecordingSink()
    await hub.join("board:later", sink)
    await create_board(db, "later")
    await set_text(db, publisher, "a", slug="later")
    await eventually(lambda: sink.seqs == [1])


async def test_listen_routes_control_messages_to_their_handler(
    hub: Hub, broker: MemoryBroker, db: Database, publisher: Publisher
) -> None:
    received: list[bytes] = []
    await hub.listen("control", received.append)
    sink = RecordingSink()
    await hub.join(CHANNEL, sink)
    await broker.publish("control", b"revoke k1")
    await set_text(db, publisher, "a")
    await eventually(lambda: sink.seqs == [1])
    assert received == [b"revoke k1"]  # and the board's event went to its channel only


async def test_close_stops_every_task(hub: Hub) -> None:
    before = asyncio.all_tasks()
    hub.start()
    for name in (CHANNEL, "board:b2"):
        await hub.join(name, RecordingSink())
    started = asyncio.all_tasks() - before
    assert len(started) == 3  # the catch-up poll and one pump per channel
    await hub.close()
    assert hub.channels == {}
    assert [task.get_name() for task in started if not task.done()] == []


async def commit_together(db: Database, values: list[str]) -> list[tuple[str, Any]]:
    """Several events committed in one write, to be published back to back."""
    async with db.transaction() as tx:
        for value in values:
            await put_widget(
                tx, SLUG, "w", kind="text", title="", config={}, value=value, if_match=None
            )
    return list(tx.events)


async def test_what_arrives_together_goes_out_as_one_run(
    hub: Hub, db: Database, publisher: Publisher
) -> None:
    """Events the broker delivered while the pump was busy reach each sink as one run whose
    wire is their frames back to back (one write per connection), in order."""
    first, second = await joined(hub, 2)
    await publisher.publish(await commit_together(db, ["a", "b", "c"]))
    await eventually(lambda: second.seqs == [1, 2, 3])
    for sink in (first, second):
        [run] = sink.runs
        assert (run.first, run.last, run.plain) == (1, 3, True)
        assert run.wire == b"".join(wire for _, _, wire, _ in run.events)
    assert first.runs[0] is second.runs[0]  # built once for every sink
    await set_text(db, publisher, "alone")
    await eventually(lambda: first.seqs[-1] == 4)
    assert first.runs[-1].wire == first.events[-1][2]  # a run of one: its own frame


async def test_a_run_is_bounded(hub: Hub, db: Database, publisher: Publisher) -> None:
    sink = RecordingSink()
    await hub.join(CHANNEL, sink)
    await publisher.publish(await commit_together(db, [str(i) for i in range(RUN_MAX_EVENTS + 6)]))
    await eventually(lambda: len(sink.seqs) == RUN_MAX_EVENTS + 6)
    assert [len(run.events) for run in sink.runs] == [RUN_MAX_EVENTS, 6]
    big = "x" * 9000  # about 9 KB a frame: a run ends at the frame that takes it past 64 KiB
    await publisher.publish(await commit_together(db, [big] * 10))
    await eventually(lambda: len(sink.seqs) == RUN_MAX_EVENTS + 16)
    *full, rest = sink.runs[2:]
    assert full
    assert sum(len(run.events) for run in sink.runs[2:]) == 10
    for run in full:
        assert len(run.wire) >= RUN_MAX_BYTES > len(run.wire) - len(run.events[-1][2])
    assert len(rest.wire) < RUN_MAX_BYTES


async def test_a_run_ends_before_a_gap_is_filled_from_the_store(
    hub: Hub, db: Database, publisher: Publisher
) -> None:
    sink = RecordingSink()
    await hub.join(CHANNEL, sink)
    events = await commit_together(db, ["a", "b", "c", "d"])
    await publisher.publish([events[0], events[1], events[3]])  # "c" never published
    await eventually(lambda: sink.seqs == [1, 2, 3, 4])
    assert [(run.first, run.last) for run in sink.runs] == [(1, 2), (3, 4)]


async def test_a_run_holding_an_access_change_is_not_plain(
    hub: Hub, db: Database, publisher: Publisher
) -> None:
    sink = RecordingSink()
    await hub.join(CHANNEL, sink)
    async with db.transaction() as tx:
        await put_widget(tx, SLUG, "w", kind="text", title="", config={}, value="a", if_match=None)
        await boards.update_board(tx, SLUG, {"public": False}, if_match=None)
    await publisher.publish(tx.events)
    await eventually(lambda: len(sink.seqs) == 2)
    [run] = sink.runs
    assert not run.plain


async def test_a_large_fan_out_lets_the_loop_run_between_slices(
    hub: Hub, db: Database, publisher: Publisher
) -> None:
    """A board with many subscribers on one worker does not hold the event loop for the
    whole fan-out: other work runs between slices, and a sink that leaves meanwhile is
    not handed the run."""
    served: list[int] = []  # deliveries made by the time the loop got its turn
    gone: list[RecordingSink] = []

    class First(RecordingSink):
        def deliver(self, run: Run) -> None:
            super().deliver(run)
            if not served and not gone:  # the first delivery of the fan-out
                gone.append(self)  # placeholder until `between` runs
                asyncio.get_running_loop().call_soon(between)

    def between() -> None:
        served.append(sum(len(sink.runs) for sink in sinks))
        gone[0] = next(sink for sink in sinks if not sink.runs)
        hub.leave(CHANNEL, gone[0])

    sinks = [First() for _ in range(2 * FANOUT_SLICE + 50)]
    for sink in sinks:
        await hub.join(CHANNEL, sink)
    await set_text(db, publisher, "a")
    await eventually(lambda: sum(len(sink.runs) for sink in sinks) == len(sinks) - 1)
    assert served[0] % FANOUT_SLICE == 0
    assert 0 < served[0] < len(sinks)  # the loop ran in the middle of the fan-out
    assert gone[0].runs == []  # left meanwhile: not handed the run
    await asyncio.sleep(0.05)
    assert sum(len(sink.runs) for sink in sinks) == len(sinks) - 1
