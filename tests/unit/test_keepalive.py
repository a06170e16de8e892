"""The keepalive wheel: one timer for every connection's pings, pongs waited for at least
the timeout, closed connections dropped."""

from __future__ import annotations

import asyncio
import itertools

from switchboard.realtime.keepalive import Keepalive


class Peer:
    """A connection as the wheel sees it; it answers (or not) like a client would."""

    def __init__(self, keepalive: Keepalive, *, answers: bool = True, open_: bool = True) -> None:
        self.keepalive = keepalive
        self.answers = answers
        self.open = open_
        self.pings: list[tuple[float, bytes]] = []
        self.dropped = False

    def ping_now(self, frame: bytes, payload: bytes) -> bool:
        if not self.open:
            return False
        assert frame == b"\x89\x04" + payload
        self.pings.append((asyncio.get_running_loop().time(), frame))
        if self.answers:  # the pong arrives at once: the next ping is one interval on
            asyncio.get_running_loop().call_soon(self.keepalive.ping_in, self, 0.2)
        return True

    def pong_overdue(self) -> None:
        self.dropped = True
        self.keepalive.forget(self)


async def test_pings_every_interval_with_one_frame_per_turn() -> None:
    keepalive = Keepalive(0.2, 0.2)
    peers = [Peer(keepalive) for _ in range(50)]
    start = asyncio.get_running_loop().time()
    for peer in peers:
        keepalive.ping_in(peer, 0.2)
    await asyncio.sleep(0.75)
    for peer in peers:
        times = [start, *(t for t, _ in peer.pings)]
        assert len(times) - 1 in (2, 3), times  # due at 0.2, 0.4, 0.6 (a busy loop is late)
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.2 - 1e-3, gaps  # never early
        assert not peer.dropped
    first_frames = {peer.pings[0][1] for peer in peers}
    # One frame per turn, built once: the same for everyone pinged in it (a pause of the
    # loop, a collection, between two registrations may put them one turn apart).
    assert len(first_frames) <= 2
    for peer in peers:
        keepalive.forget(peer)
    assert len(keepalive) == 0


async def test_a_silent_connection_is_dropped_after_the_timeout() -> None:
    keepalive = Keepalive(0.1, 0.3)
    silent, alive = Peer(keepalive, answers=False), Peer(keepalive)
    keepalive.ping_in(silent, 0.1)
    keepalive.ping_in(alive, 0.1)
    await asyncio.sleep(0.3)
    assert silent.pings
    assert not silent.dropped
    for _ in range(200):
        if silent.dropped:
            break
        await asyncio.sleep(0.01)
    assert silent.dropped
    assert len(silent.pings) == 1
    assert not alive.dropped
    keepalive.forget(alive)


async def test_closed_and_forgotten_connections_leave_the_wheel() -> None:
    keepalive = Keepalive(0.1, 0.1)
    closed, forgotten = Peer(keepalive, open_=False), Peer(keepalive)
    keepalive.ping_in(closed, 0.0)
    keepalive.ping_in(forgotten, 0.1)
    keepalive.forget(forgotten)
    await asyncio.sleep(0.25)
    assert len(keepalive) == 0
    assert forgotten.pings == []
    assert closed.pings == []
    assert keepalive._timer is None  # nothing left to turn for
