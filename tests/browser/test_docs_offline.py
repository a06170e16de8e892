"""`/docs`, `/redoc` and `/asyncapi` in Chromium with every other origin cut off: each
page renders the whole API from this server alone (no CDN, no web font)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, Route, expect

from tests.helpers import ServerProcess


@pytest.fixture
async def offline(page: Page, server: ServerProcess) -> list[str]:
    """`page` with every request to another origin refused; the refused URLs."""
    here = urlsplit(server.base_url).netloc
    refused: list[str] = []

    async def only_this_server(route: Route) -> None:
        if urlsplit(route.request.url).netloc == here:
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort("internetdisconnected")

    await page.route("**/*", only_this_server)
    return refused


async def test_swagger_ui_renders_offline(
    page: Page, server: ServerProcess, offline: list[str]
) -> None:
    await page.goto(f"{server.base_url}/docs")
    await expect(page.locator(".swagger-ui .info .title")).to_contain_text("Switchboard")
    operations = page.locator(".opblock")
    await expect(operations.first).to_be_visible()
    assert await operations.count() >= 15  # every REST route, not an error box
    path = page.locator(".opblock-summary-path", has_text="/api/boards/{slug}/events")
    await expect(path.first).to_be_visible()
    await expect(page.locator("button.authorize")).to_be_visible()
    assert offline == []


async def test_redoc_renders_offline(page: Page, server: ServerProcess, offline: list[str]) -> None:
    await page.goto(f"{server.base_url}/redoc")
    await expect(page.locator("h1").first).to_contain_text("Switchboard")
    await expect(page.get_by_text("/api/boards/{slug}/widgets/{key}").first).to_be_attached()
    await expect(page.locator("[role=menuitem]").first).to_be_visible()
    assert offline == []


async def test_asyncapi_page_renders_offline(
    page: Page, server: ServerProcess, offline: list[str]
) -> None:
    await page.goto(f"{server.base_url}/asyncapi")
    await expect(page.locator("h1")).to_contain_text("Switchboard realtime protocol")
    ws = page.locator("#channel-ws")
    await expect(ws.locator("h3", has_text="Client sends")).to_have_count(5)
    for message in ("subscribe", "presence", "auth", "snapshot", "event", "reset", "error"):
        await expect(ws.locator("h4 code", has_text=message).first).to_be_visible()
    await expect(ws.locator("table td", has_text="4101")).to_be_visible()
    await page.locator("#channel-ws a[href='#schema-Subscribe']").first.click()
    subscribe = page.locator("#schema-Subscribe + p + table")
    await expect(subscribe.locator("td code", has_text="since")).to_be_visible()
    await expect(page.locator("#channel-boardStream code").first).to_have_text(
        "/api/boards/{slug}/stream"
    )
    assert offline == []
