"""The widget PATCH, the hot path, answered in front of the router.

FastAPI's routing and dependency solving were a fifth of a widget PATCH's CPU on the
server (bench/NOTES.md, write path). `DirectWidgetPatch` sits inside the REST middlewares
(metrics, CORS, the body limit, idempotency), just outside FastAPI's exception middleware
and router, and answers the plain case itself: `PATCH /api/boards/{slug}/widgets/{key}`
with no query string, a JSON body (or none declared) that is a valid `WidgetPatch`. It
runs the same steps in the same order as the route's dependencies: the caller
(`Authorization` only), its right to write the board and the write rate limit,
`If-Match`, then `widgets.patched`, the route's own body. Their failures are `AppError`s
or the store's, answered in the one error shape by the functions the exception handlers
use.

Anything else — another path or method, a query string (`?token=` is refused by the
route), a path segment outside the slug pattern, another content type, a body that does
not parse or validate — goes on to the router with the body replayed, and the route,
which stays in the OpenAPI document, answers it exactly as before, errors included.
"""

from __future__ import annotations

import email.message
import re

import orjson
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from switchboard.api import widgets
from switchboard.api.deps import authorize_write, header_principal, if_match
from switchboard.api.middleware import header, read_body, replay, respond_error
from switchboard.api.schemas import WidgetPatch
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


def _json(content_type: str | None) -> bool:
    """As FastAPI reads a body: as JSON when no type is declared, or `application/json`
    or `application/*+json`."""
    if content_type is None or content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


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
        if match is None or not _json(header(scope, b"content-type")):
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, self.max_bytes)  # the body limit has read it already
        try:
            patch = WidgetPatch.model_validate(orjson.loads(body))
        except (orjson.JSONDecodeError, ValidationError, AppError):  # (a validator's own)
            await self.app(scope, replay(body, receive), send)  # the route's own errors
            return
        scope["route"] = self.route
        slug, key = match.groups()
        state: AppState = scope["state"]["switchboard"]
        try:
            caller = await header_principal(state, scope["state"], header(scope, b"authorization"))
            await authorize_write(state, caller, slug)
            expected = await if_match(header(scope, b"if-match"))
            response = await widgets.patched(state, slug, key, patch, expected)
        except AppError as exc:
            await respond_error(send, exc)
            return
        except DATABASE_ERRORS as exc:
            await respond_error(send, database_error(exc, path))
            return
        await response(scope, receive, send)
