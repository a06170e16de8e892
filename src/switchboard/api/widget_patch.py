"""The widget PATCH's HTTP steps, written once: `answer`.

Two callers reach it: the route (`api.widgets`, through `AnsweredRoute`, which skips
FastAPI's dependency solving) and `api.direct`, which answers most PATCHes in front of
the router. Both hand it the raw request (scope and body), so the order of the steps
lives here only: the caller (`Authorization`), the path, its right to write the board and
the write rate limit, `If-Match`, the body, the write, the response.

The route's declared signature (dependencies `Writer` and `IfMatch`, body `WidgetPatch`)
still describes the operation in the OpenAPI document; this module does what it says.
The body is read as FastAPI reads one (`strict_content_type`): as JSON only when
`Content-Type` says so (`application/json`, `application/*+json`). A body sent without
`Content-Type`, or with another type, is not read as JSON and fails validation: 422, on
both paths, as on every other route (docs/protocol.md).
"""

from __future__ import annotations

import email.message
import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.types import Scope

from switchboard.api.deps import authorize_write, etag, if_match, rest_principal
from switchboard.api.middleware import header
from switchboard.api.schemas import WidgetPatch, changes
from switchboard.api.writes import as_response, json_answer, patch_widget
from switchboard.errors import BadRequest, InvalidJson, invalid_request
from switchboard.names import SLUG_PATTERN
from switchboard.state import AppState
from switchboard.store.idempotency import Answer

_NAME = re.compile(SLUG_PATTERN)
_MISSING = {"type": "missing", "loc": ("body",), "msg": "Field required"}


async def answer(state: AppState, scope: Scope, slug: str, key: str, body: bytes) -> Response:
    """The widget PATCH of `scope` (an HTTP request) with its whole `body`: the widget as
    REST shows it, with its `ETag`. Refusals raise `AppError`s, a store failure one of
    `errors.DATABASE_ERRORS`. The response is the event's data, dumped once: FastAPI's
    validation and serialisation of a returned model would build it twice more
    (bench/NOTES.md)."""
    caller = await rest_principal(state, scope)
    _check_path(slug, key)
    await authorize_write(state, caller, slug)
    expected = await if_match(header(scope, b"if-match"))
    patch = _body(header(scope, b"content-type"), body)
    changes = patch_changes(patch)
    return as_response(
        await patch_widget(state, slug, key, changes, if_match=expected, respond=_response)
    )


def _response(data: dict[str, Any]) -> Answer:
    """The response: the widget as REST shows it, its version as the `ETag`."""
    return json_answer(data, etag(data["version"]))


def patch_changes(body: WidgetPatch) -> dict[str, Any]:
    """The fields a widget PATCH sets (`value` may be set to null)."""
    fields = changes(body, nullable=frozenset({"value"}))
    fields.pop("version", None)
    return fields


def _check_path(slug: str, key: str) -> None:
    """The route's path parameters, as `SlugParam` and `KeyParam` declare them (the
    router matches any segment; `api.direct` only these)."""
    errors = [
        {
            "type": "string_pattern_mismatch",
            "loc": ("path", name),
            "msg": f"String should match pattern '^{SLUG_PATTERN}$'",
        }
        for name, value in (("slug", slug), ("key", key))
        if _NAME.fullmatch(value) is None
    ]
    if errors:
        raise invalid_request(errors)


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body of this type as JSON: `application/json` or
    `application/*+json`; a body without a type is not (`strict_content_type`)."""
    if content_type is None:
        return False
    if content_type == "application/json":
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _body(content_type: str | None, body: bytes) -> WidgetPatch:
    """The body, validated as FastAPI validates a `WidgetPatch` body parameter: errors
    located under `body`; not JSON by its type: the raw bytes, which no model accepts."""
    if not body:
        raise invalid_request([_MISSING])
    value = _json(body) if _is_json(content_type) else body
    try:
        return WidgetPatch.model_validate(value, from_attributes=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        raise invalid_request([{**e, "loc": ("body", *e["loc"])} for e in errors]) from exc


def _json(body: bytes) -> Any:
    """The body parsed as Starlette's `Request.json` parses it (Python's `json`: orjson
    would read an integer past 64 bits as a float, which the kinds refuse as an integer),
    its failures answered as FastAPI answers them."""
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise InvalidJson("request body is not valid JSON") from exc
    except Exception as exc:  # not UTF-8/16/32, nested past the recursion limit
        raise BadRequest("There was an error parsing the body") from exc


class AnsweredRoute(APIRoute):
    """A route answered by `answer`: its endpoint's signature documents the operation
    (OpenAPI), and FastAPI's dependency solving, which would run it, is skipped."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        async def handler(request: Request) -> Response:
            params = request.path_params
            state: AppState = request.state.switchboard
            return await answer(
                state, request.scope, params["slug"], params["key"], await request.body()
            )

        return handler
