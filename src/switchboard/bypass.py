"""`WebSocketBypass`: a WebSocket handshake on a listed path (`/ws`) goes straight to
its endpoint, past the middleware stack and the router.

The HTTP middlewares pass WebSockets through untouched, yet their frames, Starlette's
error and exception middlewares, the router and FastAPI's dependency solving (with its
exit stacks) would stay suspended under every open connection: about 11 KiB each
(bench/NOTES.md). The route stays registered all the same (listing, `url_path_for`);
only the way in is shorter. Everything else, and a WebSocket on any other path, goes
down the ordinary stack.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

WebSocketEndpoint = Callable[[WebSocket], Awaitable[None]]


class WebSocketBypass:
    """ASGI middleware: a WebSocket on one of `endpoints`' paths (under the scope's
    `root_path`) runs its endpoint directly; anything else goes on to `app`."""

    def __init__(self, app: ASGIApp, endpoints: dict[str, WebSocketEndpoint]) -> None:
        self.app = app
        self.endpoints = endpoints

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            path, root = scope["path"], scope.get("root_path", "")
            endpoint = self.endpoints.get(path[len(root) :] if path.startswith(root) else path)
            if endpoint is not None:
                await endpoint(WebSocket(scope, receive, send))
                return
        await self.app(scope, receive, send)
