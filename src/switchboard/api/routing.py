"""What the app's routes serve at a request's path, read from its router in one place.

Starlette's router hands a method it does not serve to the first route whose path
matches, and that route's 405 names only its own methods in `Allow`, while FastAPI
makes a route per method: `OPTIONS /api/boards` said `Allow: POST` though `GET` is
served too. `RouteTable.allowed` is every method served at the path, whichever route
serves it; `install` puts it in the `Allow` of every 405. The middlewares that act
before routing (metrics, idempotency) ask a table of the same router which route a
request reaches.
"""

from __future__ import annotations

import re
from functools import cached_property

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import RouteContext, iter_route_contexts
from starlette._utils import get_route_path
from starlette.routing import Match, Router
from starlette.types import Scope

from switchboard.errors import error_response

UNMATCHED = "unmatched"


class RouteTable:
    """The router's routes with their full templates (read at the first request: every
    router is included by then)."""

    def __init__(self, router: Router) -> None:
        self.router = router

    @cached_property
    def routes(self) -> list[tuple[RouteContext, str]]:
        """Every route with its full template, in the router's order."""
        contexts = iter_route_contexts(self.router.routes)
        return [(c, c.path_format) for c in contexts if c.path_format]

    def template(self, scope: Scope) -> str:
        """The template of the route routing picks for `scope` (a full match first, then
        the first partial one, as the router does), or `unmatched`."""
        partial: str | None = None
        for context, template in self.routes:
            match, _ = context.matches(scope)
            if match is Match.FULL:
                return template
            if match is Match.PARTIAL and partial is None:
                partial = template
        return partial or UNMATCHED

    @cached_property
    def _methods(self) -> list[tuple[re.Pattern[str], frozenset[str]]]:
        """Each HTTP route's path regex and methods: matched as its route matches a path,
        without a child scope (the idempotency layer asks on every keyed write)."""
        return [(c.path_regex, frozenset(c.methods)) for c, _ in self.routes if c.methods]

    def serves(self, scope: Scope) -> bool:
        """Whether a route serves this method at this path (routing will not answer 404/405)."""
        path, method = get_route_path(scope), scope["method"]
        return any(method in methods and rx.match(path) for rx, methods in self._methods)

    def allowed(self, scope: Scope) -> list[str]:
        """Every method served at this path, by any route."""
        path = get_route_path(scope)
        return sorted({m for rx, methods in self._methods if rx.match(path) for m in methods})


def install(app: FastAPI) -> None:
    """Answer every 405 with all the methods served at the path in `Allow`."""
    table = RouteTable(app.router)

    async def method_not_allowed(request: Request, _: Exception) -> Response:
        response = error_response(405, "method_not_allowed", "Method Not Allowed")
        response.headers["Allow"] = ", ".join(table.allowed(request.scope))
        return response

    app.add_exception_handler(405, method_not_allowed)
