"""The dashboard page and the JavaScript client, served by the app itself.

No build step and no Node.js: the page is plain HTML, CSS and ES modules, plus
uPlot (vendored, MIT) for series charts; everything ships inside the package.

The client, `/static/switchboard.js`, has one source: `clients/js/src/switchboard.js`, also
published as the npm package `switchboard-live-client`. A built wheel carries a copy in
`static/` (pyproject.toml's `force-include`); a checkout serves the source itself.
"""

from __future__ import annotations

import html
import json
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from switchboard.api.deps import State

STATIC = Path(__file__).parent / "static"
CLIENT_SOURCE = Path(__file__).resolve().parents[3] / "clients" / "js" / "src" / "switchboard.js"
"""The JavaScript client in a checkout (`src/switchboard/web/` → the repository's root)."""
CLIENT_PACKAGED = STATIC / "switchboard.js"
"""The wheel's copy of it; never in the repository (.gitignore)."""

router = APIRouter(include_in_schema=False)

PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "connect-src 'self'",
}


TOKEN_URLS_META = '<meta name="switchboard-token-urls" content="[]">'
"""In app.html as shipped: no token endpoint allowed. The page route writes the operator's."""
PAGE = (STATIC / "app.html").read_text()


@lru_cache(maxsize=8)
def render(token_urls: tuple[str, ...]) -> str:
    """app.html naming the token endpoints the operator allows (in an attribute: escaped)."""
    allowed = html.escape(json.dumps(list(token_urls)), quote=True)
    meta = f'<meta name="switchboard-token-urls" content="{allowed}">'
    return PAGE.replace(TOKEN_URLS_META, meta)


@router.get("/")
@router.get("/boards/{slug}")
async def page(state: State) -> HTMLResponse:
    """One page for the board list and for a board; the script reads the path.

    A viewer token may be in this page's URL (`?token=`): `no-referrer` keeps the
    browser from repeating that URL in the `Referer` of everything the page loads, and
    `connect-src 'self'` keeps every request the page's scripts make on this origin. Where
    the page may POST for fresh tokens is the operator's choice, written into the page
    here, never the link's: `?token_url=` must be one of those paths."""
    body = render(tuple(state.settings.dashboard_token_urls))
    return HTMLResponse(body, headers=PAGE_HEADERS)


def client_script() -> Path:
    """The client module to serve: the wheel's copy when installed, else the checkout's source."""
    return CLIENT_PACKAGED if CLIENT_PACKAGED.is_file() else CLIENT_SOURCE


CLIENT = client_script()
"""Chosen once: which copy exists does not change while the process runs."""


@router.api_route("/static/switchboard.js", methods=["GET", "HEAD"])
async def client() -> FileResponse:
    """The JavaScript client, ahead of the `/static` mount (its file is not in `static/`)."""
    return FileResponse(CLIENT, media_type="text/javascript")


static_files = StaticFiles(directory=STATIC)
