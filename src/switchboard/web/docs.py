"""`/docs`, `/redoc` and `/asyncapi`: the API's pages, whole without internet access.

FastAPI's own pages load Swagger UI and ReDoc from a CDN, so they are blank offline (an
air-gapped deployment, a laptop on a train). `fastapi-offline` bundles both (maintained,
updated with their releases); its files are served here, under `/docs-assets`, and
FastAPI's page builders point at them. The AsyncAPI page is rendered by this app.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from switchboard.web import asyncapi_page

ASSETS = "/docs-assets"
BUNDLE = Path(fastapi_offline.__file__).parent / "static"
router = APIRouter(include_in_schema=False)
PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Referrer-Policy": "no-referrer",
    # Nothing leaves this server: ReDoc's menu would fetch its maker's logo from a CDN.
    "Content-Security-Policy": "connect-src 'self'; img-src 'self' data: blob:; font-src 'self'",
}


def install(app: FastAPI) -> None:
    """Serve the pages (the app is made with `docs_url=None, redoc_url=None`)."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=BUNDLE), name="docs-assets")


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def _offline(page: HTMLResponse) -> HTMLResponse:
    page.headers.update(PAGE_HEADERS)
    return page


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=f"{root}/docs/oauth2-redirect",
        swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
        swagger_ui_parameters=request.app.swagger_ui_parameters,
    )
    return _offline(page)


@router.get("/docs/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS}/favicon.png",
        with_google_fonts=False,
    )
    return _offline(page)


@router.get("/asyncapi")
async def asyncapi() -> HTMLResponse:
    """The WebSocket and SSE protocol, from the same document as `/asyncapi.json`."""
    return HTMLResponse(asyncapi_page.render(), headers=PAGE_HEADERS)
