"""The `table`, `list` and `trend` kinds in Chromium: what each tile shows, and that it
changes live with its widget (a leaderboard re-ranks, a trend's sparkline grows)."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page, expect

from tests.browser.test_dashboard import _api, tile
from tests.helpers import ServerProcess


async def _board(server: ServerProcess, slug: str, widgets: dict[str, dict[str, Any]]) -> None:
    await _api(server, "POST", "/api/boards", {"slug": slug, "public": True})
    for key, body in widgets.items():
        await _api(server, "PUT", f"/api/boards/{slug}/widgets/{key}", body)


async def test_table_shows_columns_and_rows(page: Page, server: ServerProcess, slug: str) -> None:
    rows = [["eu-west", 41.5, True], ["us-east", None, False]]
    rows += [[f"host-{i}", i, True] for i in range(198)]  # the most a table holds
    value = {"columns": ["host", "cpu %", "up"], "rows": rows}
    await _board(server, slug, {"hosts": {"kind": "table", "title": "Hosts", "value": value}})
    await page.goto(f"{server.base_url}/boards/{slug}")
    table = tile(page, "hosts").locator("table")
    await expect(table.locator("th")).to_have_text(["host", "cpu %", "up"])
    await expect(table.locator("tbody tr")).to_have_count(200)
    await expect(table.locator("tbody tr").first.locator("td")).to_have_text(
        ["eu-west", "41.5", "✓"]
    )
    await expect(table.locator("tbody tr").nth(1).locator("td")).to_have_text(["us-east", "", "✗"])
    await expect(table.locator("tbody tr").first.locator("td").nth(1)).to_have_class("num")
    # 200 rows scroll inside their tile; the page does not grow by them.
    scroll = (
        await tile(page, "hosts")
        .locator(".table-wrap")
        .evaluate("box => [box.clientHeight, box.scrollHeight]")
    )
    assert scroll[0] < 400 < scroll[1]

    await _api(
        server,
        "PATCH",
        f"/api/boards/{slug}/widgets/hosts",
        {"value": {"columns": ["host"], "rows": [["only"]]}},
    )
    await expect(table.locator("th")).to_have_text(["host"])
    await expect(table.locator("tbody td")).to_have_text(["only"])


async def test_list_ranks_and_reranks_live(page: Page, server: ServerProcess, slug: str) -> None:
    scores: list[dict[str, Any]] = [
        {"label": "ann", "value": 12},
        {"label": "bob", "value": 30},
        {"label": "cy"},
    ]
    widget: dict[str, Any] = {
        "kind": "list",
        "title": "Top",
        "config": {"sort": "desc"},
        "value": scores,
    }
    await _board(server, slug, {"top": widget})
    await page.goto(f"{server.base_url}/boards/{slug}")
    names = tile(page, "top").locator(".ranking .name")
    await expect(names).to_have_text(["bob", "ann", "cy"])  # by value, the valueless last
    await expect(tile(page, "top").locator(".ranking .num")).to_have_text(["30", "12", ""])
    widths = (
        await tile(page, "top")
        .locator(".share")
        .evaluate_all("bars => bars.map(bar => bar.getBoundingClientRect().width)")
    )
    assert widths[0] > widths[1] > 0
    assert widths[2] == 0

    scores[0]["value"] = 99
    await _api(server, "PATCH", f"/api/boards/{slug}/widgets/top", {"value": scores})
    await expect(names).to_have_text(["ann", "bob", "cy"])


async def test_trend_shows_latest_value_and_a_growing_sparkline(
    page: Page, server: ServerProcess, slug: str
) -> None:
    widget: dict[str, Any] = {
        "kind": "trend",
        "title": "Signups",
        "config": {"max_points": 5, "unit": "/h"},
    }
    await _board(server, slug, {"signups": widget})
    points = f"/api/boards/{slug}/widgets/signups/points"
    await _api(server, "POST", points, {"points": [{"v": 3}, {"v": 5}]})
    await page.goto(f"{server.base_url}/boards/{slug}")
    signups = tile(page, "signups")
    await expect(signups.locator(".big")).to_have_text("5/h")
    await expect(signups.locator(".delta")).to_have_text("▲ +2 since previous")
    spark = signups.locator("svg.sparkline")
    await expect(spark).to_have_attribute("data-points", "2")

    for v in (6, 8, 13, 21):
        await _api(server, "POST", points, {"points": [{"v": v}]})
    await expect(signups.locator(".big")).to_have_text("21/h")
    await expect(spark).to_have_attribute("data-points", "5")  # the newest max_points
    await expect(signups.locator(".delta")).to_have_text("▲ +8 since previous")
    line = await spark.locator("polyline").get_attribute("points")
    assert line is not None
    ys = [float(pair.split(",")[1]) for pair in line.split()]
    assert ys == sorted(ys, reverse=True)  # rising values draw a rising line (y grows down)
