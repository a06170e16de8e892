"""The live board index in Chromium: each card's widget count, last change and status
summary, kept live over one WebSocket; deleted boards marked; more boards than one
connection may follow shown honestly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.async_api import Page, expect

from tests.browser.test_dashboard import _api
from tests.helpers import ServerProcess, spawn_server


def card(page: Page, slug: str) -> Any:
    return page.locator(f'a.board-card[data-slug="{slug}"]')


async def _board(server: ServerProcess, slug: str, widgets: dict[str, dict[str, Any]]) -> None:
    await _api(server, "POST", "/api/boards", {"slug": slug, "public": True})
    for key, body in widgets.items():
        await _api(server, "PUT", f"/api/boards/{slug}/widgets/{key}", body)


STATUSES: dict[str, dict[str, Any]] = {
    "api": {"kind": "status", "value": "ok"},
    "db": {"kind": "status", "value": "degraded"},
    "queue": {"kind": "status", "value": "down"},
    "orders": {"kind": "number", "value": 3},
}


async def test_the_index_is_live(page: Page, server: ServerProcess, slug: str) -> None:
    """Counts and the status summary come from each board's snapshot and follow its
    events; "changed …" ages as time passes; a deleted board is marked, not left as it was.
    All of it over one WebSocket."""
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    await _board(server, f"{slug}-a", STATUSES)
    await _board(server, f"{slug}-b", {"n": {"kind": "number", "value": 1}})
    await page.goto(server.base_url)
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    a, b = card(page, f"{slug}-a"), card(page, f"{slug}-b")
    await expect(a.locator(".count")).to_have_text("4 widgets")
    await expect(b.locator(".count")).to_have_text("1 widget")
    summary = a.locator(".summary")
    await expect(summary).to_have_text("1 ok1 warn1 bad")
    await expect(summary.locator(".dot.bad")).to_have_text("1 bad")
    assert await b.locator(".summary").inner_text() == ""
    await expect(a.locator(".changed")).to_have_text("changed just now")
    first = await a.locator(".changed").get_attribute("datetime")

    # A widget changes and another comes: the card follows, and "changed" moves on.
    await page.wait_for_timeout(1100)
    await _api(server, "PATCH", f"/api/boards/{slug}-a/widgets/queue", {"value": "ok"})
    await expect(summary).to_have_attribute("data-ok", "2")
    await expect(summary).to_have_attribute("data-bad", "0")
    await expect(summary).to_have_text("2 ok1 warn")
    assert (await a.locator(".changed").get_attribute("datetime") or "") > (first or "")
    await _api(server, "PUT", f"/api/boards/{slug}-b/widgets/s", {"kind": "status"})
    await expect(b.locator(".count")).to_have_text("2 widgets")
    await expect(b.locator(".summary")).to_have_text("1 unknown")

    # Relative time is live: after ten seconds without a change, it says how long.
    await expect(b.locator(".changed")).to_have_text(
        re.compile(r"^changed 1\d s ago$"), timeout=16_000
    )

    await _api(server, "DELETE", f"/api/boards/{slug}-b")
    await expect(b).to_have_attribute("data-deleted", "")
    await expect(b.locator(".live-mark")).to_have_text("deleted")
    await expect(page.locator("#connection")).to_have_text("live")
    await expect(a).to_have_attribute("data-live", "true")
    assert len(sockets) == 1


async def test_more_boards_than_one_connection_follows(
    page: Page, tmp_path: Path, slug: str
) -> None:
    """With the server capping subscriptions at 2 per connection, the third board says it is
    not live and so does the header; when a followed board is deleted, it takes the place."""
    env = {
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db",
        "SWITCHBOARD_WS_MAX_SUBSCRIPTIONS": "2",
    }
    server = await spawn_server(env, cwd=str(tmp_path))
    try:
        for n in range(3):
            await _board(server, f"{slug}-{n}", {"n": {"kind": "number", "value": n}})
        await page.goto(server.base_url)
        connection = page.locator("#connection")
        await expect(connection).to_have_text("live · 2 of 3 boards")
        await expect(connection).to_have_attribute("data-state", "live")
        third = card(page, f"{slug}-2")
        await expect(third).to_have_attribute("data-live", "false")
        await expect(third.locator(".live-mark")).to_have_text("not live")
        await expect(card(page, f"{slug}-0")).to_have_attribute("data-live", "true")

        await _api(server, "DELETE", f"/api/boards/{slug}-0")
        await expect(card(page, f"{slug}-0")).to_have_attribute("data-deleted", "")
        await expect(third).to_have_attribute("data-live", "true")
        await expect(third.locator(".count")).to_have_text("1 widget")
        await expect(connection).to_have_text("live")
        await _api(server, "PATCH", f"/api/boards/{slug}-2/widgets/n", {"value": 9})
        await _api(server, "PUT", f"/api/boards/{slug}-2/widgets/m", {"kind": "number"})
        await expect(third.locator(".count")).to_have_text("2 widgets")
    finally:
        server.stop()
