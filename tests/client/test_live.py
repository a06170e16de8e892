"""`connect`/`watch` live, against a real server: several boards over one WebSocket,
short-lived tokens refreshed through `get_token` across expiries, presence, connection
states, and a down server reported within the client's timeout."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from switchboard_client import (
    AsyncClient,
    Client,
    Frame,
    NotFound,
    RetryPolicy,
    StateChange,
    Unauthorized,
)
from switchboard_client.tokens import expiry
from tests.client.conftest import embedded_env
from tests.helpers import (
    ADMIN_KEY,
    AUTH,
    ServerProcess,
    eventually,
    free_port,
    metric,
    spawn_server,
)

TTL = 2
"""Seconds a minted token lives: three expiries fit in a few seconds."""
QUICK = RetryPolicy(backoff=0.1, max_backoff=0.5)


class Tokens:
    """Viewer tokens for one private board, minted on demand (the `get_token`)."""

    def __init__(self, server: ServerProcess, slug: str) -> None:
        self.http = httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=10)
        self.slug = slug
        self.minted: list[str] = []
        self.refuse_until = 0.0

    async def mint(self) -> str:
        if time.time() < self.refuse_until:
            raise RuntimeError("no token now")
        made = await self.http.post("/api/tokens", json={"ttl": TTL, "boards": [self.slug]})
        assert made.status_code == 201, made.text
        self.minted.append(made.json()["token"])
        return self.minted[-1]


@pytest.fixture
async def admin(process: ServerProcess) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(process.base_url, token=ADMIN_KEY) as client:
        yield client


@pytest.fixture
async def tokens(process: ServerProcess, admin: AsyncClient, slug: str) -> AsyncIterator[Tokens]:
    """A private board `slug` with a widget `n` (seq 1), and its token minter."""
    await admin.create_board(slug, public=False)
    await admin.put_widget(slug, "n", kind="number", value=0)
    minter = Tokens(process, slug)
    yield minter
    await minter.http.aclose()


async def gauges(process: ServerProcess) -> tuple[float, float]:
    """The server's open connections and live subscriptions, from /metrics."""
    async with httpx.AsyncClient(base_url=process.base_url, headers=AUTH) as http:
        text = (await http.get("/metrics")).text
    return metric(text, "switchboard_connections"), metric(text, "switchboard_subscriptions")


async def collect(frames: AsyncIterator[Frame], into: list[Frame]) -> None:
    async for frame in frames:
        into.append(frame)


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def assert_each_once_in_order(frames: list[Frame], last: int) -> None:
    """A snapshot at seq 1, then every event up to `last`: no gap, no duplicate."""
    assert frames[0]["type"] == "snapshot"
    assert [f["seq"] for f in frames] == list(range(1, last + 1))


async def test_tokens_refreshed_in_band_across_three_expiries(
    process: ServerProcess, admin: AsyncClient, tokens: Tokens, slug: str
) -> None:
    states: list[StateChange] = []
    got: list[Frame] = []
    async with AsyncClient(process.base_url) as viewer:
        frames = viewer.watch(slug, get_token=tokens.mint, on_state=states.append)
        watching = asyncio.create_task(collect(frames, got))
        await eventually(lambda: len(got) == 1, 10)
        first_expiry = expiry(tokens.minted[0])
        assert first_expiry is not None
        value = 0
        while time.time() < first_expiry + 2 * TTL + 0.5:  # past three tokens' expiries
            value += 1
            await admin.set(slug, "n", value)
            await asyncio.sleep(0.25)
        await eventually(lambda: got[-1]["seq"] == value + 1, 10)
        await asyncio.sleep(0.5)  # a duplicate would arrive now
        await stop(watching)
    assert_each_once_in_order(got, value + 1)
    assert [f["data"]["value"] for f in got[1:]] == list(range(1, value + 1))
    assert len(tokens.minted) >= 4  # the first and three refreshes at least
    assert [s.state for s in states] == ["connecting", "connected", "closed"]  # one socket


async def test_a_4101_reconnects_with_a_fresh_token_and_resumes(
    process: ServerProcess, admin: AsyncClient, tokens: Tokens, slug: str
) -> None:
    first = await tokens.mint()
    tokens.refuse_until = time.time() + TTL + 1  # no refresh in time: the token expires
    states: list[StateChange] = []
    got: list[Frame] = []
    async with AsyncClient(process.base_url, token=first, retry=QUICK) as viewer:
        frames = viewer.watch(slug, get_token=tokens.mint, on_state=states.append)
        watching = asyncio.create_task(collect(frames, got))
        await eventually(lambda: len(got) == 1, 10)
        await eventually(lambda: any(s.state == "reconnecting" for s in states), TTL + 5)
        for value in (1, 2, 3):  # around the reconnect: live, or replayed with `since`
            await admin.set(slug, "n", value)
        await eventually(lambda: got[-1]["seq"] == 4, 15)
        await asyncio.sleep(0.5)
        await stop(watching)
    assert_each_once_in_order(got, 4)
    closed = next(s for s in states if s.state == "reconnecting")
    assert "4101" in closed.reason
    assert states[-2].state == "connected"


async def test_an_expired_token_without_get_token_raises_unauthorized(
    process: ServerProcess, tokens: Tokens, slug: str
) -> None:
    states: list[StateChange] = []
    async with AsyncClient(process.base_url, token=await tokens.mint()) as viewer:
        frames = viewer.watch(slug, on_state=states.append)
        assert (await anext(frames))["type"] == "snapshot"
        with pytest.raises(Unauthorized):
            await asyncio.wait_for(anext(frames), TTL + 5)
    assert states[-1].state == "failed"
    assert isinstance(states[-1].error, Unauthorized)


async def test_several_boards_over_one_connection(
    process: ServerProcess, admin: AsyncClient, slug: str
) -> None:
    boards = [f"{slug}-{i}" for i in range(3)]
    for board in boards:
        await admin.create_board(board, public=True)
        await admin.put_widget(board, "n", kind="number", value=0)  # seq 1 each
    got: list[Frame] = []
    async with AsyncClient(process.base_url, token=ADMIN_KEY) as viewer:
        watching = asyncio.create_task(collect(viewer.watch(*boards, since={boards[2]: 1}), got))
        await eventually(lambda: len(got) == 2, 10)  # two snapshots; none for the third
        for board in boards:
            await admin.set(board, "n", 5)
        await eventually(lambda: len(got) == 5, 10)
        assert await gauges(process) == (1, 3)  # one WebSocket, three subscriptions
        await stop(watching)
    by_board = {
        b: [(f["type"], f["seq"]) for f in got if f["channel"] == f"board:{b}"] for b in boards
    }
    assert by_board == {
        boards[0]: [("snapshot", 1), ("event", 2)],
        boards[1]: [("snapshot", 1), ("event", 2)],
        boards[2]: [("event", 2)],
    }

    async with AsyncClient(process.base_url, token=ADMIN_KEY) as viewer:
        async with viewer.connect() as live:
            one, two = [await live.subscribe(b) for b in boards[:2]]
            assert (await anext(one))["type"] == "snapshot"
            assert one.state == "subscribed"
            await two.unsubscribe()
            assert two.state == "unsubscribed"
            leftover = [f["type"] async for f in two]  # what came before; then it ends
            assert set(leftover) <= {"snapshot"}
            await admin.set(boards[0], "n", 6)
            live_event = await asyncio.wait_for(anext(one), 10)
            assert live_event["type"] == "event"
            assert live_event["seq"] == 3
            assert await gauges(process) == (1, 1)
        assert live.state == "closed"
        assert [f async for f in one] == []  # closing ends every subscription's iterator


async def test_presence_join_and_leave(
    process: ServerProcess, admin: AsyncClient, slug: str
) -> None:
    await admin.create_board(slug, public=True)
    async with AsyncClient(process.base_url, token=ADMIN_KEY) as first, first.connect() as live:
        changes = live.states()
        sub = await live.subscribe(slug)
        assert (await anext(sub))["type"] == "snapshot"
        viewers = await sub.who()
        assert viewers == {"bootstrap": 1}
        async with AsyncClient(process.base_url) as second:  # anonymous
            frames = second.watch(slug)
            assert (await anext(frames))["type"] == "snapshot"
            joined = await asyncio.wait_for(anext(sub), 10)
            assert joined == {
                "type": "presence",
                "channel": f"board:{slug}",
                "changed": {"anonymous": 1},
            }
            assert sub.viewers == {"bootstrap": 1, "anonymous": 1}
            await frames.aclose()
        left = await asyncio.wait_for(anext(sub), 10)
        assert left == {"type": "presence", "channel": f"board:{slug}", "changed": {"anonymous": 0}}
        assert sub.viewers == {"bootstrap": 1}
    assert [c.state async for c in changes] == ["connecting", "connected", "closed"]


async def test_a_down_server_is_reported_within_the_timeout_and_retried_forever(
    caplog: pytest.LogCaptureFixture,
) -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    port = silent.getsockname()[1]
    states: list[StateChange] = []
    started = time.monotonic()
    caplog.set_level(logging.INFO, logger="switchboard_client")
    async with AsyncClient(f"http://127.0.0.1:{port}", timeout=1.5, retry=QUICK) as sb:
        frames = sb.watch("ops", on_state=states.append)
        watching = asyncio.create_task(collect(frames, []))
        await eventually(lambda: any(s.state == "reconnecting" for s in states), 5)
        first_failure = time.monotonic() - started
        await eventually(lambda: len(states) >= 4, 10)  # it keeps going
        await stop(watching)
    silent.close()
    assert first_failure < 1.5 + 1.0
    retries = [s for s in states if s.state == "reconnecting"]
    assert [s.attempt for s in retries[:3]] == [1, 2, 3]
    assert retries[0].reason == "no answer within 1.5 s"
    assert all(s.delay is not None and 0 < s.delay <= 0.5 for s in retries)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines[0].startswith(f"127.0.0.1:{port}: no answer within 1.5 s; retry 1 in ")
    assert len(lines) >= 3

    refused = free_port()  # nothing listens: refused at once
    states.clear()
    async with AsyncClient(f"http://127.0.0.1:{refused}", retry=QUICK) as sb:
        started = time.monotonic()
        watching = asyncio.create_task(collect(sb.watch("ops", on_state=states.append), []))
        await eventually(lambda: any(s.state == "reconnecting" for s in states), 5)
        assert time.monotonic() - started < 1.0
        await stop(watching)
    assert states[1].reason == "connection refused"
    assert states[-1].state == "closed"


def test_the_sync_client_watches_two_boards_and_asks_who(process: ServerProcess, slug: str) -> None:
    boards = [f"{slug}-a", f"{slug}-b"]
    with Client(process.base_url, token=ADMIN_KEY) as sb:
        for board in boards:
            sb.create_board(board, public=True)
        frames = sb.watch(*boards)
        assert [(f["type"], f["channel"]) for f in (next(frames), next(frames))] == [
            ("snapshot", f"board:{boards[0]}"),
            ("snapshot", f"board:{boards[1]}"),
        ]
        sb.put_widget(boards[1], "n", kind="number", value=1)
        event = next(frames)
        assert (event["channel"], event["seq"]) == (f"board:{boards[1]}", 1)
        frames.close()

        with sb.connect() as live:
            sub = live.subscribe(boards[0])
            assert next(iter(sub))["type"] == "snapshot"
            assert (sub.state, live.state) == ("subscribed", "connected")
            assert sub.who() == {"bootstrap": 1}
            sub.unsubscribe()
            assert sub.state == "unsubscribed"
        assert live.state == "closed"


async def test_a_failed_board_ends_its_subscription_only(
    process: ServerProcess, admin: AsyncClient, slug: str
) -> None:
    await admin.create_board(slug, public=True)
    async with (
        AsyncClient(process.base_url, token=ADMIN_KEY) as viewer,
        viewer.connect() as live,
    ):
        missing = await live.subscribe(f"{slug}-missing")
        board = await live.subscribe(slug)
        with pytest.raises(NotFound):
            await asyncio.wait_for(anext(missing), 10)
        assert missing.state == "failed"
        assert isinstance(missing.error, NotFound)
        assert (await asyncio.wait_for(anext(board), 10))["type"] == "snapshot"
        await admin.put_widget(slug, "n", kind="number", value=1)
        created = await asyncio.wait_for(anext(board), 10)
        assert created["type"] == "event"
        assert created["seq"] == 1
        assert (board.state, live.state) == ("subscribed", "connected")


async def test_tokens_the_server_refuses_end_in_unauthorized(
    process: ServerProcess, admin: AsyncClient, slug: str
) -> None:
    await admin.create_board(slug, public=False)
    asked: list[int] = []

    def get_token() -> str:  # a plain callable: the client accepts both kinds
        asked.append(1)
        return "sbk_not-a-key"

    states: list[StateChange] = []
    async with AsyncClient(process.base_url, retry=QUICK) as viewer:
        frames = viewer.watch(slug, get_token=get_token, on_state=states.append)
        with pytest.raises(Unauthorized):
            await asyncio.wait_for(anext(frames), 20)
    assert len(asked) == 4  # the first connection's, then one per 4101, three in all
    assert [s.attempt for s in states if s.state == "reconnecting"] == [1, 2, 3]
    assert states[-1].state == "failed"


async def test_several_boards_resume_across_a_killed_server(
    tmp_path: Path, slug: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="switchboard_client")
    port = free_port()
    server = await spawn_server(embedded_env(tmp_path), port=port, cwd=str(tmp_path))
    boards = [f"{slug}-a", f"{slug}-b"]
    got: list[Frame] = []
    states: list[StateChange] = []
    try:
        async with AsyncClient(server.base_url, token=ADMIN_KEY) as admin:
            for board in boards:
                await admin.create_board(board)
                await admin.put_widget(board, "n", kind="number", value=0)  # seq 1
        async with AsyncClient(server.base_url, token=ADMIN_KEY, retry=QUICK) as viewer:
            frames = viewer.watch(*boards, on_state=states.append)
            watching = asyncio.create_task(collect(frames, got))
            await eventually(lambda: len(got) == 2, 10)
            server.kill()  # SIGKILL: no close frame
            await asyncio.to_thread(server.process.wait, 10)
            await eventually(lambda: len(states) >= 5, 10)  # retrying while it is down
            server = await spawn_server(embedded_env(tmp_path), port=port, cwd=str(tmp_path))
            async with AsyncClient(server.base_url, token=ADMIN_KEY) as admin:
                for value in (1, 2, 3):  # around the reconnect: live, or replayed
                    for board in boards:
                        await admin.set(board, "n", value)
            await eventually(lambda: len(got) == 8, 15)
            await asyncio.sleep(0.5)  # a duplicate would arrive now
            await stop(watching)
    finally:
        server.stop()
    for board in boards:
        mine = [f for f in got if f["channel"] == f"board:{board}"]
        assert_each_once_in_order(mine, 4)
    retries = [s for s in states if s.state == "reconnecting"]
    assert [s.attempt for s in retries] == list(range(1, len(retries) + 1))
    assert [s.state for s in states][-2:] == ["connected", "closed"]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert lines[0].startswith(f"127.0.0.1:{port}: connection lost; retry 1 in ")
    assert lines[1].startswith(f"127.0.0.1:{port}: connection refused; retry 2 in ")
    assert lines[-1] == f"127.0.0.1:{port}: connected again"
