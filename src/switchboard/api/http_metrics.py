"""HTTP request metrics by route template, as pure ASGI middleware (the outermost one).

A request is labelled with the template of the route that answered it
(`/api/boards/{slug}/widgets/{key}`), never with its path, so the number of series
stays that of the routes. Since FastAPI 0.137 an included router's route in
`scope["route"]` has lost the include prefixes (`/boards/{slug}`), so the templates
come from `fastapi.routing.iter_route_contexts`, which resolves them. A request
answered before routing (a body over the limit, an idempotent replay) is matched
against the routes (`api.routing.RouteTable`); one that matches none is `unmatched`.
Methods outside the standard ones are `other`.

WebSockets pass through uncounted (they are connections: `switchboard_connections`).
An SSE stream is counted by its status like any request, but it is a connection
once it starts: it leaves the in-flight gauge then, and never enters the latency
histogram, which its hours-long "responses" would drown.
"""

from __future__ import annotations

import time
from functools import cached_property

from prometheus_client import Counter, Histogram
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.api.routing import RouteTable
from switchboard.metrics import METRICS

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
EVENT_STREAM = b"text/event-stream"


def _is_stream(message: Message) -> bool:
    for name, value in message.get("headers", ()):
        if name.lower() == b"content-type":
            return bytes(value).startswith(EVENT_STREAM)
    return False


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.routes = RouteTable(router)
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    @cached_property
    def _templates(self) -> dict[int, str]:
        """The full template of each route object that routing puts in `scope["route"]`
        (routes compare by value, so they are keyed by identity)."""
        return {id(context.original_route): template for context, template in self.routes.routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        # The router rewrites `root_path` on its way through a mount: keep the original.
        path, root_path = scope["path"], scope.get("root_path", "")
        status = 500  # an exception before the response starts becomes Starlette's 500
        stream = False
        in_flight = METRICS.http_in_flight
        in_flight.inc()

        async def counted(message: Message) -> None:
            nonlocal status, stream
            if message["type"] == "http.response.start":
                status = message["status"]
                if _is_stream(message):
                    stream = True
                    in_flight.dec()
            await send(message)

        try:
            await self.app(scope, receive, counted)
        finally:
            if not stream:
                in_flight.dec()
            method = scope["method"]
            route = self._templates.get(id(scope.get("route")))
            if route is None:
                where = {"type": "http", "path": path, "root_path": root_path, "method": method}
                route = self.routes.template(where)
            requests, duration = self._series(method, route, status)
            requests.inc()
            if not stream:
                duration.observe(time.perf_counter() - start)

    def _series(self, method: str, route: str, status: int) -> tuple[Counter, Histogram]:
        """The labelled children of one method, route and status, looked up once (label
        lookups take a lock; the set is bounded by routes x methods x statuses)."""
        if method not in METHODS:
            method = "other"
        key = (method, route, status)
        series = self._children.get(key)
        if series is None:
            series = self._children[key] = (
                METRICS.http_requests.labels(method, route, str(status)),
                METRICS.http_duration.labels(method, route),
            )
        return series
