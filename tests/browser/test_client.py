"""The JavaScript client (`/static/switchboard.js`) in a real browser, against a real server
behind a proxy that can make the network path die silently: a silent server is given up
on exactly `pingInterval + pongTimeout` after its last frame, and a client closed with
1008 (too many frames) comes back after a long backoff instead of stopping for good."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, WebSocket

from tests.helpers import ServerProcess, StallingProxy, eventually, spawn_server

PING_INTERVAL = 0.25
PONG_TIMEOUT = 1.0
"""Seconds: short, so a silent server is noticed fast, and loose enough that a server busy
on a loaded machine is not taken for dead."""


@pytest.fixture
async def proxy(server: ServerProcess) -> AsyncIterator[StallingProxy]:
    started = StallingProxy(server.port)
    await started.start()
    yield started
    await started.close()


class Watched:
    """What the page's client did: the sockets it opened, pings sent on each, its states
    (with the close code that caused each, and when), when each socket last heard a frame."""

    def __init__(self, page: Page) -> None:
        self.sockets: list[WebSocket] = []
        self.pings: Counter[int] = Counter()  # socket index → pings sent on it
        self.heard: dict[int, float] = {}  # socket index → when its last frame arrived
        self.states: list[str] = []
        self.codes: list[int | None] = []
        self.at: list[float] = []
        page.on("websocket", self._opened)

    def _opened(self, socket: WebSocket) -> None:
        index = len(self.sockets)
        self.sockets.append(socket)
        socket.on("framesent", lambda frame: self._sent(index, frame))
        socket.on("framereceived", lambda _: self.heard.__setitem__(index, time.monotonic()))

    def report(self, state: str, code: int | None = None) -> None:
        self.states.append(state)
        self.codes.append(code)
        self.at.append(time.monotonic())

    async def opened(self, count: int) -> None:
        """Wait until the client has opened `count` sockets in all."""
        await eventually(lambda: len(self.sockets) >= count, timeout=10)

    def _sent(self, index: int, frame: str | bytes) -> None:
        if frame == '{"type":"ping"}':
            self.pings[index] += 1

    async def keeps_pinging(self, index: int) -> None:
        """Socket `index` gets a ping every interval (so its timer is the one running)."""
        before = self.pings[index]
        await asyncio.sleep(6 * PING_INTERVAL)
        assert self.pings[index] >= before + 3


async def start_client(page: Page, watched: Watched, **options: Any) -> None:
    """A `Switchboard` on the page (short ping timings unless told), reporting its states."""
    await page.expose_function("reportState", watched.report)
    timings = {"pingInterval": PING_INTERVAL * 1000, "pongTimeout": PONG_TIMEOUT * 1000}
    await page.evaluate(
        """async (options) => {
            const { Switchboard } = await import("/static/switchboard.js");
            const onStatus = (status) => window.reportState(status.state, status.code ?? null);
            window.client = new Switchboard({ ...options, onStatus });
        }""",
        {**timings, **options},
    )


async def test_silent_server_means_one_reconnect(page: Page, proxy: StallingProxy) -> None:
    """The server stops answering without closing: the client gives up on that socket after
    the pong timeout and opens exactly one new one, goes back to live, and keeps pinging on
    it; the old socket ending later changes nothing. A second silence is caught the same way."""
    watched = Watched(page)
    await page.goto(f"{proxy.base_url}/")
    await start_client(page, watched)
    await eventually(lambda: watched.states == ["live"])
    await watched.keeps_pinging(0)
    for silence in (1, 2):
        proxy.stall()
        await watched.opened(silence + 1)
        await eventually(lambda: watched.states[-1] == "live", timeout=10)
        proxy.cut()  # the dead path's connection finally ends
        await eventually(watched.sockets[silence - 1].is_closed)
        await watched.keeps_pinging(silence)
        assert len(watched.sockets) == silence + 1
        assert watched.states == ["live", *["reconnecting", "live"] * silence]


async def test_silence_is_noticed_at_the_documented_bound(page: Page, proxy: StallingProxy) -> None:
    """docs/client.md: a connection silent for `pingInterval + pongTimeout` is dead. With a
    ping every 2.5 s and 1 s for its pong, the client gives up 3.5 s after the last frame
    it heard — not at the next ping after that (5 s), as a check run only with pings did."""
    watched = Watched(page)
    await page.goto(f"{proxy.base_url}/")
    await start_client(page, watched, pingInterval=2500, pongTimeout=1000)
    await eventually(lambda: watched.states == ["live"])
    await eventually(lambda: watched.pings[0] >= 1, timeout=5)  # a ping, then its pong
    await eventually(lambda: 0 in watched.heard, timeout=5)
    proxy.stall()
    await eventually(lambda: "reconnecting" in watched.states, timeout=10)
    silent = watched.at[watched.states.index("reconnecting")] - watched.heard[0]
    assert 3.5 - 0.25 <= silent <= 3.5 + 0.75, silent
    assert watched.codes[watched.states.index("reconnecting")] == 4000
    await eventually(lambda: watched.states[-1] == "live", timeout=10)


async def test_too_many_frames_means_a_later_reconnect(page: Page, tmp_path: Path) -> None:
    """A client closed with 1008 (more frames in a second than the server allows) is not
    failed for good: it reports `reconnecting`, waits half to all of `maxBackoff`, and is
    live again, subscriptions resumed (docs/protocol.md#close-codes)."""
    env = {
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db",
        "SWITCHBOARD_WS_MAX_FRAMES_PER_SECOND": "20",
    }
    server = await spawn_server(env, cwd=str(tmp_path))
    try:
        watched = Watched(page)
        await page.goto(f"{server.base_url}/")
        await start_client(page, watched, pingInterval=60_000, maxBackoff=2000)
        await eventually(lambda: watched.states == ["live"])
        await page.evaluate(
            """() => { for (let i = 0; i < 40; i++) window.client.ws.send('{"type":"ping"}'); }"""
        )
        await eventually(lambda: len(watched.states) >= 2)
        assert watched.states[1] == "reconnecting"
        assert watched.codes[1] == 1008
        await eventually(lambda: len(watched.states) >= 3, timeout=10)
        assert watched.states == ["live", "reconnecting", "live"]
        assert 1.0 - 0.05 <= watched.at[2] - watched.at[1] <= 2.0 + 1.0
        assert len(watched.sockets) == 2
    finally:
        server.stop()
