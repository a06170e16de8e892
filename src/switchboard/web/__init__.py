"""The dashboard page and the JavaScript client, served by the app itself.

No build step and no Node.js: the page is plain HTML, CSS and ES modules, plus
uPlot (vendored, MIT) for series charts; everything ships inside the package.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)

PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "connect-src 'self'",
}


@router.get("/")
@router.get("/boards/{slug}")
async def page() -> FileResponse:
    """One page for the board list and for a board; the script reads the path.

    A viewer token may be in this page's URL (`?token=`): `no-referrer` keeps the
    browser from repeating that URL in the `Referer` of everything the page loads, and
    `connect-src 'self'` keeps every request the page's scripts make (its `?token_url=`
    included) on this origin, behind the script's own check."""
    return FileResponse(STATIC / "app.html", headers=PAGE_HEADERS)


static_files = StaticFiles(directory=STATIC)
