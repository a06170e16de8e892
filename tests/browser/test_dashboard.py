"""The dashboard page in a real browser (Debian's Chromium driven by Playwright) against real
server processes: snapshot, live changes, widgets coming and going, a restart, private boards."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, expect

from tests.conftest import REDIS_URL
from tests.helpers import AUTH, ServerProcess, spawn_server

ARTIFACTS = Path(__file__).parent.parent / "artifacts"


async def _api(server: ServerProcess, method: str, path: str, body: Any = None) -> Any:
    async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH) as http:
        response = await http.request(method, path, json=body)
        assert response.status_code < 300, response.text
        return response.json() if response.content else None


async def _populate(server: ServerProcess, slug: str, *, public: bool = True) -> None:
    await _api(server, "POST", "/api/boards", {"slug": slug, "title": "Shop", "public": public})
    widgets: dict[str, dict[str, Any]] = {
        "orders": {"kind": "number", "title": "Orders", "value": 41},
        "cpu": {"kind": "gauge", "title": "CPU", "config": {"max": 100, "unit": "%"}, "value": 63},
        "api": {"kind": "status", "title": "API", "value": "ok"},
        "note": {"kind": "text", "title": "Note", "value": "All quiet"},
        "latency": {"kind": "series", "title": "Latency", "config": {"unit": "ms"}},
    }
    for key, body in widgets.items():
        await _api(server, "PUT", f"/api/boards/{slug}/widgets/{key}", body)
    now = datetime.now(UTC)
    points = [
        {"t": (now - timedelta(seconds=30 - i)).isoformat(), "v": 100 + (i * 7) % 30}
        for i in range(30)
    ]
    await _api(server, "POST", f"/api/boards/{slug}/widgets/latency/points", {"points": points})


def tile(page: Page, key: str) -> Any:
    return page.locator(f'article.tile[data-key="{key}"]')


async def test_board_from_snapshot_then_live(page: Page, server: ServerProcess, slug: str) -> None:
    await _populate(server, slug)
    await page.goto(f"{server.base_url}/boards/{slug}")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(tile(page, "orders").locator(".big")).to_have_text("41")
    await expect(tile(page, "api").locator(".badge")).to_have_text("ok")
    await expect(tile(page, "cpu").locator(".big")).to_contain_text("63")
    await expect(tile(page, "latency").locator("canvas")).to_have_count(1)
    await expect(page.locator("h1")).to_have_text("Shop")

    await _api(server, "PATCH", f"/api/boards/{slug}/widgets/orders", {"value": 45})
    await expect(tile(page, "orders").locator(".big")).to_have_text("45", timeout=1000)
    await expect(tile(page, "orders").locator(".delta")).to_contain_text("+4")
    await _api(server, "PATCH", f"/api/boards/{slug}/widgets/api", {"value": "down"})
    await expect(tile(page, "api").locator(".badge.bad")).to_have_text("down", timeout=1000)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "board.png")


async def test_batch_shows_every_widget(page: Page, server: ServerProcess, slug: str) -> None:
    await _populate(server, slug)
    await page.goto(f"{server.base_url}/boards/{slug}")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(tile(page, "orders").locator(".big")).to_have_text("41")
    batch = {
        "orders": {"value": 50},
        "cpu": {"value": 97},
        "api": {"value": "degraded"},
        "note": {"value": "Deploying", "title": "Status note"},
    }
    await _api(server, "PATCH", f"/api/boards/{slug}/widgets", {"widgets": batch})
    await expect(tile(page, "orders").locator(".big")).to_have_text("50", timeout=1000)
    await expect(tile(page, "orders").locator(".delta")).to_contain_text("+9")
    await expect(tile(page, "cpu").locator(".big")).to_contain_text("97")
    await expect(tile(page, "api").locator(".badge.warn")).to_have_text("degraded")
    await expect(tile(page, "note").locator(".text")).to_have_text("Deploying")
    await expect(tile(page, "note").locator(".label")).to_have_text("Status note")
    await expect(tile(page, "latency").locator("canvas")).to_have_count(1)  # untouched
    state = await page.evaluate(
        "() => { const [sub] = window.switchboard.subscriptions.values();"
        " return [sub.board.seq, sub.board.widgets.get('orders').version]; }"
    )
    assert state == [7, 2]  # one event for the whole batch: six before it


async def test_widgets_appear_and_disappear(page: Page, server: ServerProcess, slug: str) -> None:
    await _populate(server, slug)
    await page.goto(f"{server.base_url}/boards/{slug}")
    await expect(tile(page, "orders")).to_have_count(1)
    await _api(server, "PUT", f"/api/boards/{slug}/widgets/fresh", {"kind": "text", "value": "hi"})
    await expect(tile(page, "fresh").locator(".text")).to_have_text("hi", timeout=1000)
    await _api(server, "DELETE", f"/api/boards/{slug}/widgets/fresh")
    await expect(tile(page, "fresh")).to_have_count(0, timeout=1000)
    await _api(server, "DELETE", f"/api/boards/{slug}/widgets/orders")
    await expect(tile(page, "orders")).to_have_count(0, timeout=1000)


async def test_private_board_needs_a_token(page: Page, server: ServerProcess, slug: str) -> None:
    await _populate(server, slug, public=False)
    await page.goto(f"{server.base_url}/boards/{slug}")
    await expect(page.locator("#message")).to_contain_text("private")
    await expect(page.locator("#message")).to_be_visible()
    minted = await _api(server, "POST", "/api/tokens", {"boards": [slug]})
    await page.goto(f"{server.base_url}/boards/{slug}?token={minted['token']}")
    await expect(tile(page, "orders").locator(".big")).to_have_text("41")
    await expect(page.locator("#message")).to_be_hidden()


async def test_board_list(page: Page, server: ServerProcess, slug: str) -> None:
    await _populate(server, slug)
    await _api(server, "POST", "/api/boards", {"slug": f"{slug}-secret"})
    await page.goto(server.base_url)
    cards = page.locator("a.board-card")
    await expect(cards).to_have_count(1)  # the private one is not listed anonymously
    await cards.first.click()
    await expect(tile(page, "orders")).to_have_count(1)


async def test_board_list_follows_next_cursor(page: Page, tmp_path: Path, slug: str) -> None:
    """With pages cut to 2 boards (`SWITCHBOARD_PAGE_LIMIT_MAX`), the list still shows all
    seven public boards: the page follows `next_cursor` until it is null."""
    env = {
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db",
        "SWITCHBOARD_PAGE_LIMIT_MAX": "2",
    }
    server = await spawn_server(env, cwd=str(tmp_path))
    try:
        slugs = [f"{slug}-{i}" for i in range(7)]
        for board in slugs:
            await _api(server, "POST", "/api/boards", {"slug": board, "public": True})
        await _api(server, "POST", "/api/boards", {"slug": f"{slug}-private"})
        pages: list[str] = []
        page.on("request", lambda r: pages.append(r.url) if "/api/boards?" in r.url else None)
        await page.goto(server.base_url)
        cards = page.locator("a.board-card strong")
        await expect(cards).to_have_text(slugs)  # in slug order, each once, no private one
        assert len(pages) == 4  # 2 + 2 + 2 + 1
        await expect(page.locator("#message")).to_be_hidden()
    finally:
        server.stop()


async def test_restart_shows_reconnecting_then_catches_up(
    page: Page, tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    """The page's worker stops; changes are written through another worker meanwhile; the
    page shows `reconnecting`, and after the restart shows every change it missed."""
    env = {
        "SWITCHBOARD_DATABASE_URL": pg_url,
        "SWITCHBOARD_BROKER_URL": REDIS_URL,
        "SWITCHBOARD_BROKER_PREFIX": prefix,
    }
    watched, other = await asyncio.gather(spawn_server(env), spawn_server(env))
    try:
        await _populate(other, slug)
        await page.goto(f"{watched.base_url}/boards/{slug}")
        await expect(tile(page, "orders").locator(".big")).to_have_text("41")
        port = watched.port
        watched.kill(signal.SIGTERM)
        watched.process.wait(10)
        await expect(page.locator("#connection")).to_have_attribute("data-state", "reconnecting")
        await _api(other, "PATCH", f"/api/boards/{slug}/widgets/orders", {"value": 50})
        await _api(other, "PATCH", f"/api/boards/{slug}/widgets/note", {"value": "While away"})
        await _api(other, "DELETE", f"/api/boards/{slug}/widgets/api")
        watched = await spawn_server(env, port=port)
        await expect(page.locator("#connection")).to_have_attribute(
            "data-state", "live", timeout=15_000
        )
        await expect(tile(page, "orders").locator(".big")).to_have_text("50")
        await expect(tile(page, "note").locator(".text")).to_have_text("While away")
        await expect(tile(page, "api")).to_have_count(0)
    finally:
        watched.stop()
        other.stop()
