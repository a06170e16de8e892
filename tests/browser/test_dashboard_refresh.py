"""The dashboard page keeps a private board live past its token's expiry, in Chromium:
framed by an app on another origin (`?refresh=parent`), it asks its parent for each fresh
token over `postMessage` and takes one only from its parent; behind the same origin as the
app's backend (`?token_url=/path`), it POSTs there with the viewer's cookies, and refuses a
`token_url` that is not one of the operator's paths (`SWITCHBOARD_DASHBOARD_TOKEN_URLS`),
or any at all without that setting, without sending any request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
from playwright.async_api import Browser, Frame, Page, WebSocket, expect

from tests.browser.conftest import TTL, Board
from tests.browser.test_cors import page_server
from tests.browser.test_token_refresh import expiry
from tests.helpers import LoopbackServer, _pump, eventually


class Sockets:
    """The WebSockets a page (its frames included) opened, and the tokens of the `auth`
    frames sent on them."""

    def __init__(self, page: Page) -> None:
        self.opened: list[WebSocket] = []
        self.auth_tokens: list[str] = []
        page.on("websocket", self._opened)

    def _opened(self, socket: WebSocket) -> None:
        self.opened.append(socket)
        socket.on("framesent", self._sent)

    def _sent(self, frame: str | bytes) -> None:
        sent = json.loads(frame)
        if sent.get("type") == "auth":
            self.auth_tokens.append(sent["token"])


SEEN = """() => {
    // Every value the tile shows, as it is drawn (a fresh snapshot would draw it again).
    const value = () => document.querySelector('article.tile[data-key="n"] .big').textContent;
    window.seen = [value()];
    new MutationObserver(() => {
        const tile = document.querySelector('article.tile[data-key="n"] .big');
        if (tile && tile.textContent !== window.seen.at(-1)) window.seen.push(tile.textContent);
    }).observe(document.getElementById("grid"), { childList: true, subtree: true });
}"""

EMBED = """({ src, api, delay }) => {
    // The embedding app: it answers its dashboard frame's token requests, and only those.
    const frame = document.createElement("iframe");
    frame.id = "board";
    frame.style = "width: 1000px; height: 600px";
    window.requests = [];
    window.addEventListener("message", async (event) => {
        if (event.source !== frame.contentWindow || event.origin !== api) return;
        if (!event.data || event.data.type !== "switchboard:token-request") return;
        window.requests.push(event.data.board);
        const token = await window.mintToken();
        await new Promise((resolve) => setTimeout(resolve, delay));
        frame.contentWindow.postMessage({ type: "switchboard:token", token }, api);
    });
    frame.src = src;
    document.body.append(frame);
}"""

IMPOSTOR = """({ token }) => {
    // A sibling frame on the app's origin that keeps offering the dashboard a token.
    const sibling = document.createElement("iframe");
    sibling.srcdoc = `<script>
        const board = parent.document.getElementById("board").contentWindow;
        setInterval(() => board.postMessage(
            { type: "switchboard:token", token: ${JSON.stringify(token)} }, "*"), 100);
    </scr` + `ipt>`;
    document.body.append(sibling);
}"""


async def board_frame(page: Page) -> Frame:
    await eventually(lambda: any("/boards/" in f.url for f in page.frames), timeout=10)
    return next(f for f in page.frames if "/boards/" in f.url)


async def embed(page: Page, board: Board, origin: str, *, delay: int = 0) -> Frame:
    """The app's page on `origin`, framing the dashboard of `board` with a first token."""
    await page.expose_function("mintToken", board.mint)
    await page.goto(origin)
    src = f"{board.server.base_url}/boards/{board.slug}?token={await board.mint()}&refresh=parent"
    await page.evaluate(EMBED, {"src": src, "api": board.server.base_url, "delay": delay})
    frame = await board_frame(page)
    await expect(frame.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(frame.locator('article.tile[data-key="n"] .big')).to_have_text("0")
    await frame.evaluate(SEEN)
    return frame


async def test_a_framed_dashboard_stays_live_across_three_expiries(
    page: Page, board: Board
) -> None:
    sockets = Sockets(page)
    async with page_server() as app:
        frame = await embed(page, board, app.origin)
        first_expiry = expiry(board.minted[0])
        for value in range(1, 11):  # ~10 s: more than three 3-second lifetimes
            await board.set(value)
            await expect(frame.locator('article.tile[data-key="n"] .big')).to_have_text(str(value))
            await asyncio.sleep(1)
        assert time.time() > first_expiry + 2 * TTL
        assert await frame.evaluate("window.seen") == [str(v) for v in range(11)]
        assert len(board.minted) >= 4
        assert set(await page.evaluate("window.requests")) == {board.slug}
        assert len(sockets.opened) == 1  # one WebSocket: every token came in band
        assert sockets.auth_tokens == board.minted[1:]
        assert await frame.locator("#connection").get_attribute("data-state") == "live"


async def test_tokens_from_other_windows_are_ignored(page: Page, board: Board) -> None:
    sockets = Sockets(page)
    offered = await board.http.post("/api/tokens", json={"ttl": 60, "boards": [board.slug]})
    impostor = offered.json()["token"]  # valid for the board: used, it would be accepted
    async with page_server() as app:
        # The parent answers late, so the impostors' offers arrive first, every time.
        frame = await embed(page, board, app.origin, delay=600)
        await page.evaluate(IMPOSTOR, {"token": impostor})
        first_expiry = expiry(board.minted[0])
        await eventually(lambda: time.time() > first_expiry + 1, timeout=TTL + 5)
        await board.set(1)
        await expect(frame.locator('article.tile[data-key="n"] .big')).to_have_text("1")
    assert len(sockets.auth_tokens) >= 1
    assert impostor not in sockets.auth_tokens
    assert set(sockets.auth_tokens) <= set(board.minted)
    assert len(sockets.opened) == 1
    assert await frame.evaluate("window.seen") == ["0", "1"]


class AppOrigin(LoopbackServer):
    """One origin for an app and Switchboard, as a reverse proxy makes it: `POST /mint` is
    the app's token endpoint (a 3-second token for a viewer holding the app's session
    cookie), everything else is passed to Switchboard (a WebSocket as it is; a request with
    `Connection: close`, so that every request on this origin is routed on its own)."""

    def __init__(self, board: Board) -> None:
        super().__init__()
        self.board = board
        self.connections = 0
        self.requests: list[tuple[str, str]] = []
        """(method, path) of every request on this origin: the page's, and any it made."""
        self.mints: list[dict[str, str]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            head = await reader.readuntil(b"\r\n\r\n")
            start, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
            method, path, _ = start.split(" ", 2)
            self.requests.append((method, path))
            fields = [line.split(":", 1) for line in lines if ":" in line]
            headers = {name.strip().lower(): value.strip() for name, value in fields}
            if path == "/mint":
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                await self._mint(writer, method, headers, body)
                return
            if headers.get("upgrade", "").lower() != "websocket":
                kept = [line for line in lines if not line.lower().startswith("connection:")]
                head = "\r\n".join([start, *kept, "Connection: close", "", ""]).encode("latin-1")
            upstream_reader, upstream = await asyncio.open_connection(
                "127.0.0.1", self.board.server.port
            )
            upstream.write(head)
            flowing = asyncio.Event()
            flowing.set()
            for task in (_pump(reader, upstream, flowing), _pump(upstream_reader, writer, flowing)):
                started = asyncio.create_task(task)
                self._tasks.add(started)
                started.add_done_callback(self._tasks.discard)

    async def _mint(
        self, writer: asyncio.StreamWriter, method: str, headers: dict[str, str], body: bytes
    ) -> None:
        self.mints.append({"method": method, "cookie": headers.get("cookie", "")})
        asked = json.loads(body or b"{}")
        if method != "POST" or "session=viewer" not in headers.get("cookie", ""):
            status, answer = "403 Forbidden", b'{"error": "no session"}'
        elif asked.get("board") != self.board.slug:
            status, answer = "403 Forbidden", b'{"error": "not your board"}'
        else:
            status, answer = "200 OK", json.dumps({"token": await self.board.mint()}).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(answer)}\r\nconnection: close\r\n\r\n".encode()
            + answer
        )
        await writer.drain()
        writer.close()

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await super().close()


@pytest.fixture
async def app_origin(board: Board) -> AsyncIterator[AppOrigin]:
    started = AppOrigin(board)
    await started.start()
    yield started
    await started.close()


ALLOW_MINT = {"SWITCHBOARD_DASHBOARD_TOKEN_URLS": "/app/other-token,/mint"}
"""The operator's token endpoints: the app's `/mint` among them."""


@pytest.mark.parametrize("server_env", [ALLOW_MINT])
async def test_a_same_origin_token_url(
    browser: Browser, board: Board, app_origin: AppOrigin
) -> None:
    context = await browser.new_context()
    await context.add_cookies([{"name": "session", "value": "viewer", "url": app_origin.base_url}])
    page = await context.new_page()
    sockets = Sockets(page)
    # No token in the URL: the page mints its first one too.
    await page.goto(f"{app_origin.base_url}/boards/{board.slug}?token_url=/mint")
    tile = page.locator('article.tile[data-key="n"] .big')
    await expect(tile).to_have_text("0")
    await page.evaluate(SEEN)
    first_expiry = expiry(board.minted[0])
    for value in range(1, 8):  # ~7 s: past two lifetimes
        await board.set(value)
        await expect(tile).to_have_text(str(value))
        await asyncio.sleep(1)
    assert time.time() > first_expiry + TTL
    assert await page.evaluate("window.seen") == [str(v) for v in range(8)]
    assert len(board.minted) >= 3
    assert all(m == {"method": "POST", "cookie": "session=viewer"} for m in app_origin.mints)
    assert len(sockets.opened) == 1
    assert sockets.auth_tokens == board.minted[1:]
    await context.close()


@pytest.mark.parametrize("server_env", [ALLOW_MINT])
@pytest.mark.parametrize(
    "token_url",
    [
        "//127.0.0.1:{port}/mint",
        "http://127.0.0.1:{port}/mint",
        "/\\127.0.0.1:{port}/mint",
        "/\t/127.0.0.1:{port}/mint",
        "javascript:alert(1)",
        "mint",
    ],
)
async def test_a_token_url_elsewhere_is_refused(
    page: Page, board: Board, app_origin: AppOrigin, token_url: str
) -> None:
    """Opened on the API's origin, every `token_url` here points elsewhere (the app origin
    is another port) or is not a path: the page says so, and nothing is requested."""
    sockets = Sockets(page)
    url = token_url.format(port=app_origin.port)
    token = await board.mint()
    query = f"token={token}&token_url={quote(url, safe='')}"
    await page.goto(f"{board.server.base_url}/boards/{board.slug}?{query}")
    await expect(page.locator("#message")).to_contain_text("token_url refused")
    await asyncio.sleep(0.5)
    assert app_origin.connections == 0
    assert app_origin.mints == []
    assert len(sockets.opened) == 0  # fails closed: the board is not shown


async def _crafted_link(browser: Browser, app_origin: AppOrigin, query: str) -> Page:
    """A viewer holding the app's session cookie opens a link someone else wrote."""
    context = await browser.new_context()
    await context.add_cookies([{"name": "session", "value": "viewer", "url": app_origin.base_url}])
    page = await context.new_page()
    await page.goto(f"{app_origin.base_url}/boards/{app_origin.board.slug}?{query}")
    return page


@pytest.mark.parametrize("server_env", [ALLOW_MINT])
@pytest.mark.parametrize(
    "token_url", ["/transfer", "/api/keys", "/mint/", "/mint?x=1", "/x/../mint", "/MINT"]
)
async def test_a_path_the_operator_did_not_list_gets_no_post(
    browser: Browser, board: Board, app_origin: AppOrigin, token_url: str
) -> None:
    """A path on the same origin, so SameSite cookies, fetch metadata and CORS would all let
    the POST through: the page refuses any path but the operator's, exactly as listed."""
    token = await board.mint()
    page = await _crafted_link(
        browser, app_origin, f"token={token}&token_url={quote(token_url, safe='')}"
    )
    message = page.locator("#message")
    await expect(message).to_contain_text("token_url refused")
    await expect(message).to_contain_text("/app/other-token, /mint")
    await asyncio.sleep(0.5)
    assert [r for r in app_origin.requests if r[0] != "GET"] == []
    assert app_origin.mints == []
    await page.context.close()


async def test_without_the_setting_every_token_url_is_refused(
    browser: Browser, board: Board, app_origin: AppOrigin
) -> None:
    """No `SWITCHBOARD_DASHBOARD_TOKEN_URLS`: even the app's real endpoint is refused (the
    framed `refresh=parent` tests above run on this same default and stay live)."""
    page = await _crafted_link(browser, app_origin, "token_url=/mint")
    await expect(page.locator("#message")).to_contain_text(
        "allows no token endpoint (SWITCHBOARD_DASHBOARD_TOKEN_URLS)"
    )
    await asyncio.sleep(0.5)
    assert [r for r in app_origin.requests if r[0] != "GET"] == []
    assert app_origin.mints == []
    await page.context.close()
