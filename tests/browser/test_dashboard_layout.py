"""The board's layout in a real browser: order and spans from the board, changed live over
REST; the grid uses the whole width of a wall screen and overflows nothing on a phone."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import open_page
from tests.browser.test_dashboard import _api, tile
from tests.helpers import ServerProcess

Box = dict[str, float]


async def _board(server: ServerProcess, slug: str, keys: list[str], **board: Any) -> None:
    await _api(server, "POST", "/api/boards", {"slug": slug, "public": True, **board})
    for n, key in enumerate(keys):
        body = {"kind": "number", "title": key.upper(), "value": n}
        await _api(server, "PUT", f"/api/boards/{slug}/widgets/{key}", body)


async def _boxes(page: Page) -> dict[str, Box]:
    """Each tile's box (getBoundingClientRect), by key."""
    boxes: dict[str, Box] = await page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll("article.tile")].map((t) => {
            const r = t.getBoundingClientRect();
            return [t.dataset.key, { x: r.x, y: r.y, width: r.width, height: r.height }];
        }))"""
    )
    return boxes


async def _order(page: Page) -> list[str]:
    keys: list[str] = await page.locator("article.tile").evaluate_all(
        "(tiles) => tiles.map((t) => t.dataset.key)"
    )
    return keys


async def _column(page: Page) -> float:
    """The width of one grid column (with the gap that follows it)."""
    width: float = await page.evaluate(
        """() => {
            const grid = document.getElementById("grid");
            const style = getComputedStyle(grid);
            const track = parseFloat(style.gridTemplateColumns.split(" ")[0]);
            return track + parseFloat(style.columnGap);
        }"""
    )
    return width


async def test_a_layout_change_arrives_live(page: Page, server: ServerProcess, slug: str) -> None:
    """Order and spans follow the board's layout, and re-lay out as soon as it is PATCHed:
    no reload (the page's own marker survives)."""
    await _board(server, slug, ["a", "b", "c", "d"])
    await page.goto(f"{server.base_url}/boards/{slug}")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    await expect(page.locator("article.tile")).to_have_count(4)
    assert await _order(page) == ["a", "b", "c", "d"]  # no layout: creation order, 1 × 1
    before = await _boxes(page)
    assert len({round(box["width"]) for box in before.values()}) == 1
    column = await _column(page)
    await page.evaluate("window.notReloaded = true")

    layout = [{"key": "c", "w": 2, "h": 2}, {"key": "gone"}, {"key": "a", "w": 2}]
    await _api(server, "PATCH", f"/api/boards/{slug}", {"layout": layout})
    await expect(page.locator("article.tile").first).to_have_attribute("data-key", "c")
    assert await _order(page) == ["c", "a", "b", "d"]  # unnamed ones after, in their order
    after = await _boxes(page)
    # c spans two columns and two rows, a two columns and one row (the kind's default
    # height): side by side at the top; b and d fill the row under a.
    gap = column - before["b"]["width"]
    assert abs(after["c"]["width"] - (2 * column - gap)) < 2
    assert abs(after["a"]["width"] - (2 * column - gap)) < 2
    assert abs(after["c"]["height"] - (2 * after["a"]["height"] + gap)) < 2
    assert (after["c"]["y"], after["b"]["x"]) == (after["a"]["y"], after["a"]["x"])
    assert after["c"]["x"] < after["a"]["x"]
    assert after["b"]["y"] > after["a"]["y"]
    assert await tile(page, "c").get_attribute("data-w") == "2"
    assert await tile(page, "c").get_attribute("data-h") == "2"
    assert await page.evaluate("window.notReloaded") is True

    # Back to the kinds' defaults, live too.
    await _api(server, "PATCH", f"/api/boards/{slug}", {"layout": []})
    await expect(page.locator("article.tile").first).to_have_attribute("data-key", "a")
    assert await _order(page) == ["a", "b", "c", "d"]
    reset = await _boxes(page)
    assert abs(reset["c"]["width"] - before["c"]["width"]) < 1
    # A widget created later joins in its place: the layout names it first.
    await _api(server, "PATCH", f"/api/boards/{slug}", {"layout": [{"key": "late", "w": 2}]})
    body = {"kind": "status", "value": "ok"}
    await _api(server, "PUT", f"/api/boards/{slug}/widgets/late", body)
    await expect(page.locator("article.tile").first).to_have_attribute("data-key", "late")
    await expect(tile(page, "late")).to_have_attribute("data-span", "2")


async def _fills(browser: Browser, server: ServerProcess, slug: str, width: int) -> None:
    """With enough tiles for a full first row, the last column's right edge is the grid's,
    one padding (24 px) from the viewport's right edge: no empty band on the right."""
    async with open_page(browser, viewport={"width": width, "height": 1000}) as page:
        await page.goto(f"{server.base_url}/boards/{slug}")
        await expect(page.locator("article.tile")).to_have_count(12)
        boxes = await _boxes(page)
        columns = int(await page.locator("#grid").get_attribute("data-columns") or 0)
        assert columns >= width // 300, columns  # 260 px columns and more: many of them
        right = max(box["x"] + box["width"] for box in boxes.values())
        assert width - 30 < right <= width - 20, (width, right)
        overflow = await page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= width


async def test_the_grid_fills_wide_screens(
    browser: Browser, server: ServerProcess, slug: str
) -> None:
    await _board(server, slug, [f"w{n:02d}" for n in range(12)])
    for width in (1920, 2560):
        await _fills(browser, server, slug, width)


async def test_a_phone_has_no_horizontal_overflow(
    browser: Browser, server: ServerProcess, slug: str
) -> None:
    """On a 360 px phone the grid has one column: a tile asking for four spans that one."""
    await _board(server, slug, ["a", "b"])
    await _api(server, "PATCH", f"/api/boards/{slug}", {"layout": [{"key": "b", "w": 4}]})
    body = {"kind": "series", "title": "S", "value": [{"v": 1}, {"v": 2}]}
    await _api(server, "PUT", f"/api/boards/{slug}/widgets/s", body)
    async with open_page(browser, viewport={"width": 360, "height": 740}) as page:
        await page.goto(f"{server.base_url}/boards/{slug}")
        await expect(page.locator("article.tile")).to_have_count(3)
        await expect(tile(page, "b")).to_have_attribute("data-span", "1")
        assert await tile(page, "b").get_attribute("data-w") == "4"
        assert await page.evaluate("document.documentElement.scrollWidth") <= 360
        boxes = await _boxes(page)
        assert all(box["x"] >= 0 and box["x"] + box["width"] <= 360 for box in boxes.values())
        # Turned sideways (a wider screen): the tile spans as many columns as there are now.
        await page.set_viewport_size({"width": 900, "height": 400})
        await expect(tile(page, "b")).to_have_attribute("data-span", "3")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 900
