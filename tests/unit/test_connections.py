"""Unit tier (`uv run pytest tests/unit`, seconds, no server): the `Connections` registry
that opens, counts and closes this worker's connections."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import pytest

from switchboard.auth.principal import ANONYMOUS, BOOTSTRAP, Principal, Role
from switchboard.metrics import METRICS
from switchboard.realtime.codes import CloseCode
from switchboard.realtime.connections import Connections, TooManyConnections, slot_of
from switchboard.realtime.sse import SseTransport
from switchboard.realtime.transport import Transport
from tests.unit.twins import eventually

ALICE = Principal("key", Role.READ, key_id="alice")
BOB = Principal("token", Role.WRITE, key_id="bob")


def registry(per_credential: int = 2) -> Connections:
    return Connections(per_credential=per_credential, max_queue=8, max_bytes=1000)


def held(connections: Connections) -> list[str]:
    """Whose connections are open (the registry's one way to list them: `principals`)."""
    return sorted(principal.identity for principal in connections.principals())


def open_gauge() -> float:
    return METRICS.registry.get_sample_value("switchboard_connections") or 0.0


def test_slots() -> None:
    assert slot_of(ANONYMOUS, "10.0.0.1") == "anonymous:10.0.0.1"
    assert slot_of(ANONYMOUS, None) == "anonymous"
    assert slot_of(ALICE, "10.0.0.1") == "key:alice"  # a credential counts wherever it is
    assert slot_of(BOOTSTRAP, None) == "bootstrap"


async def test_open_builds_a_connection_and_counts_it_for_the_block() -> None:
    connections = registry()
    gauge = open_gauge()
    async with connections.open(ALICE, "10.0.0.1", SseTransport()) as connection:
        assert connection.principal is ALICE
        assert connection.slot == "key:alice"
        assert isinstance(connection.transport, SseTransport)
        assert (connection.queue.maxsize, connection.max_bytes) == (8, 1000)
        assert list(connections.principals()) == [ALICE]
        assert open_gauge() == gauge + 1
    assert held(connections) == []
    assert open_gauge() == gauge


async def test_the_limit_is_per_credential() -> None:
    connections = registry(per_credential=2)
    async with AsyncExitStack() as stack:
        for _ in range(2):
            await stack.enter_async_context(connections.open(ALICE, None, Transport()))
        with pytest.raises(TooManyConnections):
            await stack.enter_async_context(connections.open(ALICE, "10.0.0.9", Transport()))
        await stack.enter_async_context(connections.open(BOB, None, Transport()))
        assert held(connections) == ["key:alice", "key:alice", "token:bob"]
    async with connections.open(ALICE, None, Transport()):  # released: room again
        assert held(connections) == ["key:alice"]


async def test_anonymous_clients_count_per_address() -> None:
    connections = registry(per_credential=1)
    async with connections.open(ANONYMOUS, "10.0.0.1", Transport()):
        with pytest.raises(TooManyConnections):
            async with connections.open(ANONYMOUS, "10.0.0.1", Transport()):
                pass
        async with connections.open(ANONYMOUS, "10.0.0.2", Transport()) as other:
            assert other.slot == "anonymous:10.0.0.2"
            assert held(connections) == ["anonymous", "anonymous"]


async def test_a_block_that_raises_releases_its_connection() -> None:
    connections = registry(per_credential=1)
    gauge = open_gauge()
    with pytest.raises(RuntimeError, match="client vanished"):
        async with connections.open(ALICE, None, Transport()):
            raise RuntimeError("client vanished")
    assert held(connections) == []
    assert open_gauge() == gauge
    async with connections.open(ALICE, None, Transport()):
        pass


async def test_close_where_revoke_key_and_key_ids() -> None:
    connections = registry()
    async with AsyncExitStack() as stack:
        alice = await stack.enter_async_context(connections.open(ALICE, None, Transport()))
        bob = await stack.enter_async_context(connections.open(BOB, None, Transport()))
        anon = await stack.enter_async_context(connections.open(ANONYMOUS, "1.2.3.4", Transport()))
        assert held(connections) == ["anonymous", "key:alice", "token:bob"]
        connections.close_where(lambda c: c.slot.startswith("anonymous"), CloseCode.GOING_AWAY)
        assert anon.close_code == CloseCode.GOING_AWAY
        assert sorted(connections.key_ids()) == ["alice", "bob"]  # anonymous holds no key
        connections.revoke_key("bob")
        assert bob.close_code == CloseCode.UNAUTHORIZED
        assert alice.close_code is None
        assert await bob.next_frame() is None
        assert len(held(connections)) == 3  # closed, but open until their transports finish
    assert connections.key_ids() == []


async def test_an_expiring_credential_closes_its_connection_on_time() -> None:
    """Whatever the transport: at the credential's expiry, 4101; a new credential moves
    the moment (the old one no longer holds); a connection that ended has no timer left."""
    connections = registry()
    soon = Principal("token", Role.READ, key_id="alice", expires_at=time.time() + 0.05)
    later = Principal("token", Role.READ, key_id="alice", expires_at=time.time() + 0.3)
    async with connections.open(soon, None, SseTransport()) as connection:
        connection.principal = later
        await asyncio.sleep(0.15)
        assert connection.close_code is None  # past the first expiry, not the new one
        await eventually(lambda: connection.close_code == CloseCode.UNAUTHORIZED, timeout=2)
    async with connections.open(soon, None, Transport()) as gone:
        pass
    await asyncio.sleep(0.1)
    assert gone.close_code is None


async def test_drain_closes_everything_now_and_from_now_on() -> None:
    connections = registry()
    async with connections.open(ALICE, None, Transport()) as before:
        before.send_nowait("queued")
        connections.drain()
        assert connections.stopping
        assert before.close_code == CloseCode.SERVICE_RESTART
        assert await before.next_frame() is None
        async with connections.open(BOB, None, Transport()) as after:
            assert after.close_code == CloseCode.SERVICE_RESTART
            assert await after.next_frame() is None
            assert held(connections) == ["key:alice", "token:bob"]
    assert held(connections) == []
