"""The board page's timeline scrubber, in Chromium: dragging back shows the board as it was
(marked as history, not live), writes meanwhile leave it put but stretch the timeline, and
"live" (or dragging to the end) returns to the live board with every write since."""

from __future__ import annotations

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.browser.test_dashboard import _api, tile
from tests.helpers import AUTH, ServerProcess


async def _scrub(page: Page, seq: int | str) -> None:
    """Move the scrubber as a drag does: its value, then an `input` event."""
    await page.locator("#rewind-range").evaluate(
        "(range, seq) => { range.value = String(seq === 'end' ? range.max : seq);"
        " range.dispatchEvent(new Event('input', { bubbles: true })); }",
        seq,
    )


async def test_scrub_back_then_live_without_a_gap(
    page: Page, server: ServerProcess, slug: str
) -> None:
    await _api(server, "POST", "/api/boards", {"slug": slug, "title": "Now", "public": True})
    await _api(server, "PUT", f"/api/boards/{slug}/widgets/n", {"kind": "number", "value": 0})
    for value in range(1, 6):  # value k at seq k + 1: the board is at seq 6
        await _api(server, "PATCH", f"/api/boards/{slug}/widgets/n", {"value": value})
    await page.goto(f"{server.base_url}/boards/{slug}")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    big, grid, label = (
        tile(page, "n").locator(".big"),
        page.locator("#grid"),
        page.locator("#rewind-label"),
    )
    await expect(big).to_have_text("5")
    await expect(page.locator("#rewind")).to_be_visible()
    await expect(label).to_have_text("live · seq 6")
    await expect(page.locator("#rewind-range")).to_have_attribute("min", "0")

    await _scrub(page, 3)
    await expect(grid).to_have_attribute("data-history", "3")
    await expect(big).to_have_text("2")
    await expect(grid).to_have_class("grid history")
    await expect(label).to_contain_text("viewing seq 3 of 6, as of ")
    await expect(page.locator("#rewind-live")).to_be_enabled()

    await _api(server, "PATCH", f"/api/boards/{slug}", {"title": "Later"})  # seq 7
    for value in (6, 7):  # seqs 8, 9: the live board moves on, the past stays on screen
        await _api(server, "PATCH", f"/api/boards/{slug}/widgets/n", {"value": value})
    await expect(label).to_contain_text("viewing seq 3 of 9")
    await expect(big).to_have_text("2")
    await expect(page.locator("h1")).to_have_text("Now")
    await _scrub(page, 0)
    await expect(grid).to_have_attribute("data-history", "0")
    await expect(tile(page, "n")).to_have_count(0)  # as created: no widgets yet

    await page.locator("#rewind-live").click()
    await expect(grid).to_have_class("grid")
    assert await grid.get_attribute("data-history") is None
    await expect(big).to_have_text("7")  # every write made while in the past
    await expect(page.locator("h1")).to_have_text("Later")
    await expect(grid).to_have_class("grid")
    await expect(label).to_have_text("live · seq 9")
    await _api(server, "PATCH", f"/api/boards/{slug}/widgets/n", {"value": 8})
    await expect(big).to_have_text("8")
    await expect(label).to_have_text("live · seq 10")

    await _scrub(page, 4)
    await expect(big).to_have_text("3")
    await _scrub(page, "end")  # dragging to the end is live again
    await expect(big).to_have_text("8")
    await expect(grid).to_have_class("grid")
    await expect(page.locator("#rewind-live")).to_be_disabled()


@pytest.mark.parametrize("server_env", [{"SWITCHBOARD_EVENT_RETENTION": "20"}])
async def test_the_timeline_starts_at_the_retained_history(
    page: Page, server: ServerProcess, slug: str
) -> None:
    """With the last 20 events kept, the trim at seq 100 cuts at 80: the scrubber starts
    there (`History-From`), and a seq in it shows its value."""
    await _api(server, "POST", "/api/boards", {"slug": slug, "public": True})
    await _api(server, "PUT", f"/api/boards/{slug}/widgets/n", {"kind": "number", "value": 0})
    async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH) as http:
        for value in range(1, 105):  # value k at seq k + 1: the board is at seq 105
            await http.patch(f"/api/boards/{slug}/widgets/n", json={"value": value})
    await page.goto(f"{server.base_url}/boards/{slug}")
    await expect(page.locator("#rewind-label")).to_have_text("live · seq 105")
    await expect(page.locator("#rewind-range")).to_have_attribute("min", "80")
    await _scrub(page, 91)
    await expect(page.locator("#grid")).to_have_attribute("data-history", "91")
    await expect(tile(page, "n").locator(".big")).to_have_text("90")
