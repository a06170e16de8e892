"""Browser fixtures: Debian's Chromium driven by Playwright, and a real server process."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.helpers import AUTH, ServerProcess, spawn_server

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        await launched.close()


@contextlib.asynccontextmanager
async def open_page(browser: Browser, **options: Any) -> AsyncIterator[Page]:
    """A page in a context of its own (1280×800 unless `options` say otherwise: viewport,
    locale, timezone_id, …); it must raise no script error, ever."""
    context = await browser.new_context(**{"viewport": {"width": 1280, "height": 800}, **options})
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    await context.close()
    assert errors == []


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    async with open_page(browser) as opened:
        yield opened


@pytest.fixture
def server_env() -> dict[str, str]:
    """More environment for `server` (a test parametrizes `server_env` to set some)."""
    return {}


@pytest.fixture
async def server(tmp_path: Path, server_env: dict[str, str]) -> AsyncIterator[ServerProcess]:
    """A `switchboard serve` process on SQLite + the memory broker."""
    env = {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db", **server_env}
    process = await spawn_server(env, cwd=str(tmp_path))
    yield process
    process.stop()


TTL = 3
"""Seconds: how long the tokens minted for a page live."""


class Board:
    """A private board on the server, and the tokens minted for the page."""

    def __init__(self, server: ServerProcess, slug: str) -> None:
        self.server = server
        self.slug = slug
        self.minted: list[str] = []
        self.refuse_until = 0.0
        self.http = httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=10)

    async def create(self) -> None:
        response = await self.http.post("/api/boards", json={"slug": self.slug, "public": False})
        assert response.status_code == 201, response.text
        widget = await self.http.put(
            f"/api/boards/{self.slug}/widgets/n", json={"kind": "number", "value": 0}
        )
        assert widget.status_code in (200, 201), widget.text

    async def mint(self) -> str:
        """The page's `getToken` (refusing until `refuse_until`, to let a token expire)."""
        if time.time() < self.refuse_until:
            raise RuntimeError("no token now")
        response = await self.http.post("/api/tokens", json={"ttl": TTL, "boards": [self.slug]})
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        self.minted.append(token)
        return token

    async def set(self, value: int) -> None:
        response = await self.http.patch(
            f"/api/boards/{self.slug}/widgets/n", json={"value": value}
        )
        assert response.status_code == 200, response.text


@pytest.fixture
async def board(server: ServerProcess, slug: str) -> AsyncIterator[Board]:
    made = Board(server, slug)
    await made.create()
    yield made
    await made.http.aclose()
