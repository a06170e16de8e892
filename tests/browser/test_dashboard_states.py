"""What the dashboard says about itself, in Chromium: live only when the board is live; a
missing board says so; an empty board shows how to add a first widget; values on screen go
stale (dimmed, "last updated …") while the page reconnects, and fresh once it is back; the
board index is live once its boards are subscribed, and says "not live" when it has none."""

from __future__ import annotations

import re
import signal
from pathlib import Path

from playwright.async_api import Page, expect

from tests.browser.test_dashboard import _api, tile
from tests.helpers import ServerProcess, spawn_server


async def test_live_board_is_live_and_fresh(page: Page, server: ServerProcess, slug: str) -> None:
    await _api(server, "POST", "/api/boards", {"slug": slug, "public": True})
    await _api(server, "PUT", f"/api/boards/{slug}/widgets/n", {"kind": "number", "value": 7})
    await page.goto(f"{server.base_url}/boards/{slug}")
    connection = page.locator("#connection")
    await expect(connection).to_have_attribute("data-state", "live")
    await expect(connection).to_have_text("live")
    await expect(connection).to_be_visible()
    await expect(page.locator("#grid")).not_to_have_attribute("data-stale", "")
    await expect(page.locator("#updated")).to_have_text(re.compile(r"^updated \S"))
    await expect(page.locator("#hint")).to_be_hidden()


async def test_missing_board_says_so_and_is_never_live(
    page: Page, server: ServerProcess, slug: str
) -> None:
    states: list[str] = []

    def note(state: str) -> None:
        states.append(state)

    await page.expose_function("noteState", note)
    await page.add_init_script(
        "new MutationObserver(() => window.noteState("
        "document.getElementById('connection').dataset.state))"
        ".observe(document, {subtree: true, attributes: true, attributeFilter: ['data-state']});"
    )
    await page.goto(f"{server.base_url}/boards/{slug}")
    await expect(page.locator("#message")).to_contain_text(f"Board “{slug}” does not exist")
    connection = page.locator("#connection")
    await expect(connection).to_have_attribute("data-state", "missing")
    await expect(connection).to_have_text("not found")
    await page.wait_for_timeout(500)  # the page stays put: no reconnect turns it "live"
    await expect(connection).to_have_attribute("data-state", "missing")
    assert "missing" in states, states
    assert "live" not in states, states
    await expect(page.locator("#grid")).to_be_hidden()
    await expect(page.locator("#hint")).to_be_hidden()


async def test_private_board_without_token_is_not_live(
    page: Page, server: ServerProcess, slug: str
) -> None:
    await _api(server, "POST", "/api/boards", {"slug": slug, "public": False})
    await page.goto(f"{server.base_url}/boards/{slug}")
    await expect(page.locator("#message")).to_contain_text("private")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "missing")


async def test_empty_board_shows_how_to_add_a_widget(
    page: Page, server: ServerProcess, slug: str
) -> None:
    await _api(server, "POST", "/api/boards", {"slug": slug, "public": True})
    await page.goto(f"{server.base_url}/boards/{slug}")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    hint = page.locator("#hint")
    await expect(hint).to_be_visible()
    await expect(hint).to_contain_text("no widgets yet")
    lines = await hint.locator("pre code").all_text_contents()
    assert len(lines) == 2
    curl, push = lines
    assert curl.startswith(f"curl -X PUT {server.base_url}/api/boards/{slug}/widgets/first")
    assert "Authorization: Bearer $SWITCHBOARD_TOKEN" in curl
    assert push == f"switchboard push {slug} first 2 --url {server.base_url}"
    await expect(hint.locator("button.copy")).to_have_count(2)
    # The first widget arrives: the hint goes, the widget shows.
    await _api(server, "PUT", f"/api/boards/{slug}/widgets/first", {"kind": "number", "value": 1})
    await expect(tile(page, "first").locator(".big")).to_have_text("1")
    await expect(hint).to_be_hidden()
    await _api(server, "DELETE", f"/api/boards/{slug}/widgets/first")
    await expect(hint).to_be_visible()


async def test_values_go_stale_while_reconnecting(
    page: Page, server: ServerProcess, tmp_path: Path, slug: str
) -> None:
    """The server stops: the page says "reconnecting", dims the values and says when they
    were last updated; the server comes back: live, fresh, and the change made meanwhile."""
    await _api(server, "POST", "/api/boards", {"slug": slug, "public": True})
    await _api(server, "PUT", f"/api/boards/{slug}/widgets/n", {"kind": "number", "value": 7})
    await page.goto(f"{server.base_url}/boards/{slug}")
    grid = page.locator("#grid")
    await expect(tile(page, "n").locator(".big")).to_have_text("7")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    opacity = "el => getComputedStyle(el).opacity"
    assert await tile(page, "n").evaluate(opacity) == "1"

    server.kill(signal.SIGTERM)
    server.process.wait(10)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
    await expect(page.locator("#connection")).to_have_text("reconnecting…")
    await expect(grid).to_have_attribute("data-stale", "")
    await expect(page.locator("#updated")).to_have_text(re.compile(r"^last updated \S"))
    await expect(tile(page, "n").locator(".big")).to_have_text("7")  # still shown, dimmed
    await page.wait_for_timeout(400)  # the fade
    assert float(await tile(page, "n").evaluate(opacity)) < 0.6

    env = {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db"}
    back = await spawn_server(env, cwd=str(tmp_path), port=server.port)
    try:
        await _api(back, "PATCH", f"/api/boards/{slug}/widgets/n", {"value": 8})
        await expect(page.locator("#connection")).to_have_attribute(
            "data-state", "live", timeout=15_000
        )
        await expect(grid).not_to_have_attribute("data-stale", "")
        await expect(tile(page, "n").locator(".big")).to_have_text("8")
        await expect(page.locator("#updated")).to_have_text(re.compile(r"^updated \S"))
        await page.wait_for_timeout(400)
        assert await tile(page, "n").evaluate(opacity) == "1"
    finally:
        back.stop()


async def test_index_is_not_stuck_connecting(page: Page, server: ServerProcess, slug: str) -> None:
    """The index follows its boards: live once the socket is and each board is subscribed;
    with no board to follow, it says it is a list, not live."""
    await page.goto(server.base_url)
    connection = page.locator("#connection")
    await expect(connection).to_have_attribute("data-state", "listed")
    await expect(connection).to_have_text("not live")
    await _api(server, "POST", "/api/boards", {"slug": slug, "public": True})
    await page.reload()
    await expect(page.locator("a.board-card")).to_have_count(1)
    await expect(connection).to_have_attribute("data-state", "live")
    await expect(connection).to_have_text("live")
    await expect(page.locator("a.board-card")).to_have_attribute("data-live", "true")
    await expect(connection).to_be_visible()
    await expect(page.locator("#updated")).to_have_text(re.compile(r"^listed \S"))
    # `hidden` means hidden, whatever the element's class says.
    await expect(page.locator("#grid")).to_be_hidden()
    await expect(page.locator("#message")).to_be_hidden()
