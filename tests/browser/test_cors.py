"""An SPA on another origin, in Chromium: a page served from a second local port reads
the API on its own port (a public and a private board, a conditional idempotent write
whose `ETag` it reads, an `EventSource` that resumes with `Last-Event-ID` after its
connection drops), while the same page from a third, unlisted port is refused."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.helpers import (
    ADMIN_KEY,
    AUTH,
    LoopbackServer,
    ServerProcess,
    StallingProxy,
    spawn_server,
)

PAGE = b"<!doctype html><title>spa</title><p>An SPA on its own origin.</p>"


class PageServer(LoopbackServer):
    """A static page on 127.0.0.1 on a port of its own: an origin the API is not on."""

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        head = f"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {len(PAGE)}\r\n"
        writer.write(head.encode() + b"connection: close\r\n\r\n" + PAGE)
        await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def page_server() -> AsyncIterator[PageServer]:
    started = PageServer()
    await started.start()
    try:
        yield started
    finally:
        await started.close()


@pytest.fixture
async def spa() -> AsyncIterator[PageServer]:
    """The SPA's origin, the one the API lists."""
    async with page_server() as started:
        yield started


@pytest.fixture
async def elsewhere() -> AsyncIterator[PageServer]:
    """The same page on a third origin, not listed."""
    async with page_server() as started:
        yield started


@pytest.fixture
async def api(tmp_path: Path, spa: PageServer) -> AsyncIterator[ServerProcess]:
    """A server process that lists the SPA's origin, and no other."""
    env = {
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db",
        "SWITCHBOARD_ALLOWED_ORIGINS": spa.origin,
    }
    process = await spawn_server(env, cwd=str(tmp_path))
    yield process
    process.stop()


async def open_page(browser: Browser, url: str) -> Page:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(url)
    return page


async def seed(api: ServerProcess, slug: str) -> None:
    """A public board and a private one, each with widget `n` at version 1."""
    async with httpx.AsyncClient(base_url=api.base_url, headers=AUTH) as http:
        for board, public in ((slug, True), (f"{slug}-private", False)):
            created = await http.post("/api/boards", json={"slug": board, "public": public})
            assert created.status_code == 201, created.text
            widget = await http.put(
                f"/api/boards/{board}/widgets/n", json={"kind": "number", "value": 1}
            )
            assert widget.status_code == 201, widget.text


READ_AND_WRITE = """async ({api, slug, key}) => {
    const board = await fetch(`${api}/api/boards/${slug}`);
    const hidden = await fetch(`${api}/api/boards/${slug}-private`);
    const auth = {Authorization: `Bearer ${key}`};
    const own = await fetch(`${api}/api/boards/${slug}-private`, {headers: auth});
    const write = (version) => fetch(`${api}/api/boards/${slug}/widgets/n`, {
        method: "PATCH",
        headers: {...auth, "Content-Type": "application/json",
                  "Idempotency-Key": `spa-${version}`, "If-Match": `"${version}"`},
        body: JSON.stringify({value: 2}),
    });
    const patched = await write(1);
    const stale = await write(1 + 100);
    const credentialed = await fetch(`${api}/api/boards/${slug}`, {credentials: "include"})
        .then(() => "read", (error) => error.name);
    return {
        board: [board.status, (await board.json()).slug],
        hidden: [hidden.status, (await hidden.json()).error.code],
        own: [own.status, (await own.json()).slug, own.headers.get("ETag")],
        patched: [patched.status, patched.headers.get("ETag"), (await patched.json()).value],
        stale: [stale.status, (await stale.json()).error.code],
        credentialed,
    };
}"""

WATCH = """({url}) => new Promise((resolve) => {
    window.seen = [];
    const source = new EventSource(url);
    window.source = source;
    source.addEventListener("snapshot", (e) => resolve(["snapshot", Number(e.lastEventId)]));
    source.onmessage = (e) => window.seen.push(Number(e.lastEventId));
    source.onerror = () => resolve(["error", source.readyState]);
})"""

REFUSED = """async ({api, slug}) => {
    let fetched;
    try {
        await fetch(`${api}/api/boards/${slug}`);
        fetched = "read";
    } catch (error) {
        fetched = error.name;
    }
    const streamed = await new Promise((resolve) => {
        const source = new EventSource(`${api}/api/boards/${slug}/stream`);
        source.onopen = () => resolve("open");
        source.addEventListener("snapshot", () => resolve("snapshot"));
        source.onerror = () => { source.close(); resolve("error"); };
    });
    return {fetched, streamed};
}"""


async def test_an_spa_on_a_listed_origin(
    browser: Browser, api: ServerProcess, spa: PageServer, slug: str
) -> None:
    await seed(api, slug)
    page = await open_page(browser, spa.origin)
    args: dict[str, Any] = {"api": api.base_url, "slug": slug, "key": ADMIN_KEY}
    read = await page.evaluate(READ_AND_WRITE, args)
    assert read == {
        "board": [200, slug],
        "hidden": [404, "not_found"],
        "own": [200, f"{slug}-private", '"1"'],
        "patched": [200, '"2"', 2],
        "stale": [412, "precondition_failed"],
        "credentialed": "TypeError",  # credentialed CORS is never answered
    }

    proxy = StallingProxy(api.port)  # a stream connection the test can drop
    await proxy.start()
    try:
        url = f"{proxy.base_url}/api/boards/{slug}/stream"
        assert await page.evaluate(WATCH, {"url": url}) == ["snapshot", 2]
        async with httpx.AsyncClient(base_url=api.base_url, headers=AUTH) as http:
            path = f"/api/boards/{slug}/widgets/n"
            assert (await http.patch(path, json={"value": 3})).status_code == 200
            await page.wait_for_function("window.seen.length === 1", timeout=10_000)
            proxy.stall()
            proxy.cut()  # the stream drops; EventSource comes back with Last-Event-ID: 3
            assert (await http.patch(path, json={"value": 4})).status_code == 200
            await page.wait_for_function("window.seen.length === 2", timeout=15_000)
            assert (await http.patch(path, json={"value": 5})).status_code == 200
            await page.wait_for_function("window.seen.length === 3", timeout=10_000)
        # 4 came while the stream was down: resumed after 3 (a fresh stream would have
        # started from a snapshot at 4 and shown only 5), no gap, no duplicate.
        assert await page.evaluate("window.seen") == [3, 4, 5]
        await page.evaluate("window.source.close()")
    finally:
        await proxy.close()


async def test_an_unlisted_origin_is_refused(
    browser: Browser, api: ServerProcess, elsewhere: PageServer, slug: str
) -> None:
    await seed(api, slug)
    page = await open_page(browser, elsewhere.origin)
    refused = await page.evaluate(REFUSED, {"api": api.base_url, "slug": slug})
    assert refused == {"fetched": "TypeError", "streamed": "error"}
