"""Request ids and the access log: `AccessLog`, the outermost ASGI middleware.

For each HTTP request and each WebSocket connection it takes the client's
`X-Request-ID` when it is sane (1 to 128 of `A-Z a-z 0-9 . _ : -`; anything else could
forge or break log lines) or makes one, and binds it as `request_id` with
`structlog.contextvars` for as long as the request or connection lasts: every line
logged meanwhile carries it, the app's own and those uvicorn logs from the ASGI `send`
(a WebSocket's `[accepted]` line), since they run in the request's task. The id goes
back in the `X-Request-ID` response header (the WebSocket handshake's too).

The access line is ours, not uvicorn's. uvicorn logs its line from its protocol as the
response starts, as one preformatted message, with no duration; this middleware logs
one when the request or connection ends (`request` or `websocket`), inside the same
context, with structured fields: method, path (query `token=` redacted), status (the
handshake's for a WebSocket: 101, or 403 if refused) and close code, client and
duration_ms. Headers are never logged. `logs.logging_config()` leaves `uvicorn.access`
without a handler, so uvicorn skips its own line.

`app.SwitchboardApp` puts the middleware outside Starlette's error middleware, so a 500
from an unexpected exception carries the header, its `unhandled_error` line the id,
and its access line the status.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any
from urllib.parse import quote

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.api.middleware import header
from switchboard.logs import redact

HEADER = "X-Request-ID"
_RAW_HEADER = HEADER.lower().encode()
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_TAGGED = frozenset({"http.response.start", "websocket.accept", "websocket.http.response.start"})

log = structlog.get_logger("switchboard.access")


def request_id(scope: Scope) -> str:
    """The client's id if it is sane, else a new one (32 hex digits)."""
    given = header(scope, _RAW_HEADER)
    if given is not None and _SANE.fullmatch(given):
        return given
    return uuid.uuid4().hex


def _path(scope: Scope, root_path: str) -> str:
    """As uvicorn shows it: the path quoted (no raw control characters), the query kept.
    `root_path` is the one the request came with: a `Mount` inside moves its own prefix
    into the scope's (Starlette 1.x), and the path would show it twice."""
    path = quote(root_path + scope["path"])
    query = scope.get("query_string", b"")
    return redact(f"{path}?{query.decode('latin-1')}" if query else path)


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id(scope)
        tag = (_RAW_HEADER, rid.encode())
        status: int | None = None
        close_code: int | None = None

        async def tagged_send(message: Message) -> None:
            nonlocal status, close_code
            kind = message["type"]
            if kind in _TAGGED:
                message = {**message, "headers": [*message.get("headers", ()), tag]}
                status = message.get("status", 101)
            elif kind == "websocket.close":
                status = status or 403  # closed before the handshake: uvicorn refuses it
                close_code = close_code or message.get("code", 1000)
            await send(message)

        async def watched_receive() -> Message:
            nonlocal close_code
            message = await receive()
            if message["type"] == "websocket.disconnect":
                close_code = close_code or message.get("code", 1005)
            return message

        http = scope["type"] == "http"
        root_path = scope.get("root_path", "")
        start = time.perf_counter()
        with structlog.contextvars.bound_contextvars(request_id=rid):
            try:
                await self.app(scope, receive if http else watched_receive, tagged_send)
            except Exception:
                status = status or 500  # what uvicorn answers
                raise
            finally:
                if log.is_enabled_for(logging.INFO):  # else it would be built for nothing
                    self._log(scope, root_path, status, close_code, time.perf_counter() - start)

    @staticmethod
    def _log(
        scope: Scope, root_path: str, status: int | None, close_code: int | None, seconds: float
    ) -> None:
        http = scope["type"] == "http"
        fields: dict[str, Any] = {"path": _path(scope, root_path), "status": status}
        if http:
            fields["method"] = scope["method"]
        else:
            fields["close_code"] = close_code
        log.info(
            "request" if http else "websocket",
            **fields,
            client=_client(scope),
            duration_ms=round(seconds * 1000, 2),
        )
