"""The widget PATCH, the hot path, answered in front of the router.

FastAPI's routing and dependency solving were a fifth of a widget PATCH's CPU on the
server (bench/NOTES.md, write path). `DirectWidgetPatch` sits inside the REST middlewares
(metrics, CORS, the body limit, idempotency), just outside FastAPI's exception middleware
and router, and answers `PATCH /api/boards/{slug}/widgets/{key}` without a query string
with `widget_patch.answer`, the function the route itself runs: the same steps in the
same order, whatever the body. Their failures are `AppError`s or the store's, answered in
the one error shape by the functions the exception handlers use.

Anything else — another path or method, a query string (`?token=` is refused by the
route), a path segment outside the slug pattern — goes on to the router with the body
replayed.
"""

from __future__ import annotations

import re

from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from switchboard.api import widgets
from switchboard.api.middleware import read_body, respond_error
from switchboard.api.widget_patch import answer
from switchboard.errors import DATABASE_ERRORS, AppError, database_error
from switchboard.names import SLUG_PATTERN
from switchboard.state import AppState

PATH = re.compile(rf"/api/boards/({SLUG_PATTERN})/widgets/({SLUG_PATTERN})")


def _route() -> APIRoute:
    """The route this stands in for: requests answered here are counted under its
    template (`HttpMetricsMiddleware` reads `scope["route"]`)."""
    for route in widgets.router.routes:
        if isinstance(route, APIRoute) and route.endpoint is widgets.patch_widget:
            return route
    raise LookupError("the widget PATCH route is not registered")


class DirectWidgetPatch:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.route = _route()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "PATCH" or scope["query_string"]:
            await self.app(scope, receive, send)
            return
        path, root = scope["path"], scope.get("root_path", "")
        match = PATH.fullmatch(path[len(root) :] if root and path.startswith(root) else path)
        if match is None:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, self.max_bytes)  # the body limit has read it already
        scope["route"] = self.route
        slug, key = match.groups()
        state: AppState = scope["state"]["switchboard"]
        try:
            response = await answer(state, scope, slug, key, body)
        except AppError as exc:
            await respond_error(send, exc)
            return
        except DATABASE_ERRORS as exc:
            await respond_error(send, database_error(exc, path, write=True))
            return
        await response(scope, receive, send)
