"""Series charts in Chromium: axes that fit one point, a few or a thousand; y labels; time
labels in the viewer's locale and time zone; no overflow on a 360 px phone. What is checked is
what the chart drew: its scales, and the labels each axis last drew (`data-x-labels`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import open_page
from tests.browser.test_dashboard import _api, tile
from tests.helpers import ServerProcess

NOON = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


async def _series(server: ServerProcess, slug: str, points: list[dict[str, Any]]) -> None:
    await _api(server, "POST", "/api/boards", {"slug": slug, "public": True})
    widget = {"kind": "series", "title": "Latency", "config": {"max_points": 1000}}
    await _api(server, "PUT", f"/api/boards/{slug}/widgets/s", widget)
    await _api(server, "POST", f"/api/boards/{slug}/widgets/s/points", {"points": points})


async def _axes(page: Page) -> dict[str, Any]:
    """The chart's x scale (seconds) and the labels each axis drew."""
    chart = tile(page, "s").locator(".chart")
    await expect(chart.locator("canvas")).to_have_count(1)
    await page.wait_for_function(
        "() => window.switchboardCharts && window.switchboardCharts.get('s')"
    )
    scale = await page.evaluate(
        "() => { const u = window.switchboardCharts.get('s').chart;"
        " return [u.scales.x.min, u.scales.x.max]; }"
    )
    x = json.loads(await chart.get_attribute("data-x-labels") or "[]")
    y = json.loads(await chart.get_attribute("data-y-labels") or "[]")
    return {"x_min": scale[0], "x_max": scale[1], "x": x, "y": y}


@pytest.fixture
async def berlin(browser: Browser) -> AsyncIterator[Page]:
    """A page in German, in Berlin's time zone."""
    async with open_page(browser, locale="de-DE", timezone_id="Europe/Berlin") as opened:
        yield opened


async def test_one_point_gets_a_narrow_axis_in_the_viewers_time(
    berlin: Page, server: ServerProcess, slug: str
) -> None:
    await _series(server, slug, [{"t": NOON.isoformat(), "v": 42}])
    await berlin.goto(f"{server.base_url}/boards/{slug}")
    axes = await _axes(berlin)
    at = NOON.timestamp()
    assert axes["x_min"] < at < axes["x_max"]
    assert axes["x_max"] - axes["x_min"] <= 600  # minutes around the point, not years
    assert len(axes["x"]) >= 2
    assert "11:00:00" in axes["x"]  # 10:00 UTC, in Berlin, 24-hour clock
    assert not any("2027" in label or "2029" in label for label in axes["x"])
    assert len(set(axes["y"])) >= 3  # y labels around 42
    assert any(float(label) < 42 for label in axes["y"])
    assert any(float(label) > 42 for label in axes["y"])


async def test_time_labels_follow_the_locale(page: Page, server: ServerProcess, slug: str) -> None:
    await _series(server, slug, [{"t": NOON.isoformat(), "v": 1}])
    await page.goto(f"{server.base_url}/boards/{slug}")
    zone = await page.evaluate("() => Intl.DateTimeFormat().resolvedOptions().timeZone")
    axes = await _axes(page)
    assert all(label.endswith(("AM", "PM")) for label in axes["x"]), (zone, axes["x"])


async def test_few_points_span_their_data(page: Page, server: ServerProcess, slug: str) -> None:
    points = [
        {"t": (NOON + timedelta(minutes=i)).isoformat(), "v": v} for i, v in enumerate([3, 9, 4])
    ]
    await _series(server, slug, points)
    await page.goto(f"{server.base_url}/boards/{slug}")
    axes = await _axes(page)
    assert axes["x_min"] == NOON.timestamp()
    assert axes["x_max"] == NOON.timestamp() + 120
    assert len(axes["x"]) >= 2
    assert len(set(axes["y"])) >= 3


async def test_a_thousand_points(page: Page, server: ServerProcess, slug: str) -> None:
    start = NOON - timedelta(seconds=999)
    points = [
        {"t": (start + timedelta(seconds=i)).isoformat(), "v": 100 + (i * 37) % 200}
        for i in range(1000)
    ]
    await _series(server, slug, points)
    await page.goto(f"{server.base_url}/boards/{slug}")
    axes = await _axes(page)
    assert axes["x_min"] == start.timestamp()
    assert axes["x_max"] == NOON.timestamp()
    assert 3 <= len(axes["x"]) <= 20  # labelled, not crowded
    assert len(set(axes["x"])) == len(axes["x"])
    assert len(set(axes["y"])) >= 3
    await expect(tile(page, "s").locator(".big")).to_have_text(str(100 + (999 * 37) % 200))


async def test_no_overflow_on_a_phone(browser: Browser, server: ServerProcess, slug: str) -> None:
    # Ten minutes, aligned: label placement does not depend on when the test runs.
    start = NOON - timedelta(minutes=10)
    points = [{"t": (start + timedelta(seconds=10 * i)).isoformat(), "v": i % 7} for i in range(61)]
    await _series(server, slug, points)
    await _api(server, "PUT", f"/api/boards/{slug}/widgets/n", {"kind": "number", "value": 1234567})
    async with open_page(browser, viewport={"width": 360, "height": 740}) as page:
        await page.goto(f"{server.base_url}/boards/{slug}")
        axes = await _axes(page)
        assert len(axes["x"]) >= 2
        assert len(set(axes["y"])) >= 3
        width = await page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 360
        for selector in ["header", "#connection", 'article.tile[data-key="s"]', ".chart canvas"]:
            box = await page.locator(selector).first.bounding_box()
            assert box is not None
            assert box["x"] >= 0
            assert box["x"] + box["width"] <= 360, selector
        # Turned into a wide window: the chart grows with its tile.
        canvas = page.locator(".chart canvas")
        narrow = await canvas.bounding_box()
        await page.set_viewport_size({"width": 1280, "height": 800})
        assert narrow is not None
        await page.wait_for_function(
            "(before) => window.switchboardCharts.get('s').chart.width > before + 200",
            arg=narrow["width"],
        )
        wide = await canvas.bounding_box()
        holder = await page.locator(".chart").bounding_box()
        assert wide is not None
        assert holder is not None
        assert wide["x"] + wide["width"] <= holder["x"] + holder["width"] + 1
