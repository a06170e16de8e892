"""The JavaScript client (`/static/switchboard.js`) in a real browser, against a real server
behind a proxy that can make the network path die silently."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Page, WebSocket

from tests.helpers import ServerProcess, StallingProxy, eventually

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
    """What the page's client did: the sockets it opened, pings sent on each, its states."""

    def __init__(self, page: Page) -> None:
        self.sockets: list[WebSocket] = []
        self.pings: Counter[int] = Counter()  # socket index → pings sent on it
        self.states: list[str] = []
        page.on("websocket", self._opened)

    def _opened(self, socket: WebSocket) -> None:
        index = len(self.sockets)
        self.sockets.append(socket)
        socket.on("framesent", lambda frame: self._sent(index, frame))

    def report(self, state: str) -> None:
        self.states.append(state)

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


async def start_client(page: Page, watched: Watched) -> None:
    """A `Switchboard` on the page, with short ping timings, reporting its states."""
    await page.expose_function("reportState", watched.report)
    await page.evaluate(
        """async (options) => {
            const { Switchboard } = await import("/static/switchboard.js");
            const onStatus = (status) => window.reportState(status.state);
            window.client = new Switchboard({ ...options, onStatus });
        }""",
        {"pingInterval": PING_INTERVAL * 1000, "pongTimeout": PONG_TIMEOUT * 1000},
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
