"""The pictures in docs/dashboard.md, made here: a board with one widget of every kind,
each tile photographed as a viewer sees it, the whole board, and the board rewound.

Every run writes them to tests/artifacts/screenshots/; with SWITCHBOARD_DOCS_SCREENSHOTS=1
they go to docs/img/ instead (that is how the committed ones are made). The test checks
what it photographs (each tile drawn, of a sensible size), never pixels, and that every
picture docs/dashboard.md shows is one this test makes."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, expect

from tests.browser.conftest import open_page
from tests.browser.test_dashboard import _api, tile
from tests.browser.test_dashboard_rewind import _scrub
from tests.helpers import ServerProcess

ROOT = Path(__file__).parent.parent.parent
DOCS = ROOT / "docs" / "dashboard.md"
OUT = (
    ROOT / "docs" / "img"
    if os.environ.get("SWITCHBOARD_DOCS_SCREENSHOTS") == "1"
    else ROOT / "tests" / "artifacts" / "screenshots"
)
POINTS = [
    {"t": f"2026-12-03T10:{m:02d}:00Z", "v": v}
    for m, v in enumerate([112, 118, 131, 127, 142, 138, 151, 149, 163, 158, 171])
]
WIDGETS: dict[str, dict[str, Any]] = {
    "number": {"kind": "number", "title": "Orders today", "value": 1284},
    "gauge": {
        "kind": "gauge",
        "title": "CPU",
        "config": {"min": 0, "max": 100, "unit": "%", "thresholds": {"warn": 70, "crit": 90}},
        "value": 76,
    },
    "status": {"kind": "status", "title": "Payments API", "value": "ok"},
    "text": {"kind": "text", "title": "Last deploy", "value": "v1.4.3 rolled out to eu-west"},
    "series": {"kind": "series", "title": "p95 latency", "config": {"unit": "ms"}, "value": POINTS},
    "trend": {"kind": "trend", "title": "Signups / h", "value": POINTS[-8:]},
    "table": {
        "kind": "table",
        "title": "Regions",
        "value": {
            "columns": ["region", "hosts", "cpu %", "healthy"],
            "rows": [
                ["eu-west", 12, 41.5, True],
                ["us-east", 9, 63.2, True],
                ["ap-south", 4, 88.0, False],
            ],
        },
    },
    "list": {
        "kind": "list",
        "title": "Top customers",
        "config": {"sort": "desc"},
        "value": [
            {"label": "ACME Corp", "value": 1210},
            {"label": "Globex", "value": 845},
            {"label": "Initech", "value": 620},
            {"label": "Umbrella", "value": 310},
        ],
    },
}


async def test_every_kind_and_the_rewind_photographed(
    browser: Browser, server: ServerProcess, slug: str
) -> None:
    await _api(server, "POST", "/api/boards", {"slug": slug, "title": "Web shop", "public": True})
    for key, body in WIDGETS.items():
        await _api(server, "PUT", f"/api/boards/{slug}/widgets/{key}", body)
    OUT.mkdir(parents=True, exist_ok=True)
    async with open_page(browser, viewport={"width": 1280, "height": 900}) as page:
        await page.goto(f"{server.base_url}/boards/{slug}")
        await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
        await _api(server, "PATCH", f"/api/boards/{slug}/widgets/number", {"value": 1312})
        await expect(tile(page, "series").locator("canvas")).to_have_count(1)
        await expect(tile(page, "number").locator(".delta")).to_have_text("▲ +28 since previous")
        for kind in WIDGETS:
            shown = tile(page, kind)
            await expect(shown).to_have_attribute("data-kind", kind)
            box = await shown.bounding_box()
            assert box is not None
            assert box["width"] >= 200
            assert box["height"] >= 100
            await shown.screenshot(path=OUT / f"kind-{kind}.png", animations="disabled")
        await page.screenshot(path=OUT / "board.png", animations="disabled")

        # Rewind: the values change, then the scrubber goes back to before the change.
        before = (await _api(server, "GET", f"/api/boards/{slug}"))["seq"]
        await _api(server, "PATCH", f"/api/boards/{slug}/widgets/status", {"value": "down"})
        await _api(server, "PATCH", f"/api/boards/{slug}/widgets/gauge", {"value": 97})
        await expect(tile(page, "status").locator(".badge.bad")).to_have_text("down")
        await _scrub(page, before)
        await expect(page.locator("#grid")).to_have_attribute("data-history", str(before))
        await expect(tile(page, "status").locator(".badge")).to_have_text("ok")
        await expect(page.locator("#rewind-label")).to_contain_text(
            f"viewing seq {before} of {before + 2}"
        )
        await page.screenshot(path=OUT / "rewind.png", animations="disabled")
    made = {path.name for path in OUT.glob("*.png")}
    shown_in_docs = set(re.findall(r"\]\(img/([\w.-]+\.png)\)", DOCS.read_text()))
    assert shown_in_docs, "docs/dashboard.md shows no picture"
    assert shown_in_docs <= made, shown_in_docs - made
