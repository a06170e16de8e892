"""Cross-origin REST and SSE (CORS): which web pages on other origins may read this API.

Starlette's `CORSMiddleware` with the API's one policy, for the origins in
`SWITCHBOARD_ALLOWED_ORIGINS` (the same list the WebSocket's `Origin` check reads; `*`
for any origin). With no origin listed it does nothing at all: same-origin only, as
before. Credentials are bearer headers or `?token=`, never cookies, so credentialed CORS
(`Access-Control-Allow-Credentials`) is never answered: a page on another origin can use
only a credential it holds itself, never one the browser would attach for it.

It sits outside the body limit and the idempotency middleware, so a preflight is
answered before any of them, or authentication, rate limiting or routing, sees it, and
every answer they or the routes give (401, 404, 413, 429, an idempotent replay, the SSE
stream) carries the headers. An unexpected 500 does not: Starlette renders it outside
every middleware added to the app.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "Last-Event-ID",  # an `EventSource` resuming after a dropped stream sends it
    "X-Request-ID",
)
RESPONSE_HEADERS = (
    "ETag",
    "Location",
    "Retry-After",
    "Idempotent-Replayed",
    "X-Request-ID",
    "Seq-Time",  # `GET /api/boards/{slug}?at=`
    "History-From",  # its 410
)
MAX_AGE = 600
"""Seconds a browser may reuse a preflight's answer (Chromium caps it at 7,200)."""


class Cors(CORSMiddleware):
    """The API's CORS policy for `origins`; a pass-through when there is none."""

    def __init__(self, app: ASGIApp, origins: Sequence[str]) -> None:
        super().__init__(
            app,
            allow_origins=origins,
            allow_methods=METHODS,
            allow_headers=REQUEST_HEADERS,
            allow_credentials=False,
            expose_headers=RESPONSE_HEADERS,
            max_age=MAX_AGE,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.allow_origins:
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        """As Starlette's, but an origin not listed is answered as a request without one
        (`Vary: Origin` only): Starlette would tell it the exposed headers."""
        if message["type"] != "http.response.start":  # an SSE stream's every chunk
            await send(message)
            return
        origin = request_headers.get("origin")
        if origin is not None and not self.is_allowed_origin(origin):
            request_headers = Headers(raw=[h for h in request_headers.raw if h[0] != b"origin"])
        await super().send(message, send, request_headers)
