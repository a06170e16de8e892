"""The OpenAPI document (`/openapi.json`, `/docs`) as the server really behaves.

FastAPI sees the routes, not what surrounds them: its error responses would be its
own `{"detail": …}` 422, and it knows nothing of the bearer credential, of the body
limit, of the rate limit or of `Idempotency-Key` (middlewares). Routes declare what
their own code raises with `responses=errors(…)`; `install` adds, once, what the
shared machinery answers: every write's middleware and validation errors, every
dependency's (`DEPENDENCY_ERRORS`), the security scheme and the `Idempotency-Key`
header. Every 4xx/5xx refers to `ErrorResponse`, the one error shape.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from switchboard.api.deps import board_writer, current_principal, if_match, stream_principal
from switchboard.errors import ErrorResponse

ERROR_SCHEMA = {"$ref": "#/components/schemas/ErrorResponse"}
BEARER = "bearer"
VIEWER_TOKEN = "viewer_token"
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})

ANONYMOUS: dict[str, Any] = {"security": [{}, {BEARER: []}]}
"""`openapi_extra` of a route that serves callers without a credential (public boards)."""

STATUS_TEXT = {
    400: "`bad_request` or `invalid_json`: a body that is not JSON, a malformed "
    "`Idempotency-Key`, `If-Match` or `cursor`, `?token=` on a REST route",
    401: "`unauthorized`: a credential is needed, or the one sent is invalid, expired or revoked",
    403: "`forbidden`: the credential's role does not allow this",
    404: "`not_found`: no such board or widget, or not readable with this credential",
    409: "`conflict`: it exists already, or a request with this `Idempotency-Key` is running",
    410: "`history_expired`: events after `after` were trimmed; read the board, go on from its seq",
    412: "`precondition_failed`: `If-Match` (or a batch entry's `version`) is not current",
    413: "`payload_too_large`: the body (or a batch's event) is over the size limit",
    422: "`validation_error`: a field is missing, unknown or out of range (`details`), or the "
    "`Idempotency-Key` was used for a different request",
    429: "`rate_limited`: too many writes (or streams) for this credential; retry after "
    "`Retry-After` seconds",
    503: "`unavailable`: the database could not be reached (nothing was written), or the "
    "connection died after a write was sent (the outcome is unknown: retry with the same "
    "`Idempotency-Key`)",
}

WRITE_ERRORS = (400, 409, 413, 422, 503)
"""What any write may meet besides its route's own errors: `BodyLimitMiddleware` (413),
the `Idempotency-Key` middleware (400, 409, 422, 503), body parsing (400, 422) and the
store's refusals (`errors._database_error`: 409, 422, 503)."""

DEPENDENCY_ERRORS: dict[Any, tuple[int, ...]] = {
    current_principal: (400, 401, 503),
    stream_principal: (401, 503),
    board_writer: (401, 403, 404, 429),
    if_match: (400, 412),
}
"""What each shared dependency raises, for every route that uses it."""

RETRY_AFTER = {
    "description": "Seconds to wait before retrying",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
ETAG = {
    "description": 'The version, as `"N"`: send it back in `If-Match`',
    "required": True,
    "schema": {"type": "string", "pattern": '^"[0-9]+"$'},
}
REWOUND_ETAG = {
    **ETAG,
    "required": False,
    "description": f"{ETAG['description']}; absent on a historic answer (`at`)",
}
SEQ_TIME = {
    "description": "With `at`: the time of that seq's event (ISO 8601)",
    "schema": {"type": "string"},
}
REPLAYED = {
    "description": "`true` on the stored first response to a retried `Idempotency-Key`",
    "schema": {"type": "string", "enum": ["true"]},
}
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "1 to 255 printable ASCII characters. A retry with the same key (same "
    "credential, method, path and body) gets the first response back and writes nothing "
    "again; the same key with another request is a 422.",
    "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
}
SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`sbk_…`) or a viewer token from `POST /api/tokens`",
    },
    VIEWER_TOKEN: {
        "type": "apiKey",
        "in": "query",
        "name": "token",
        "description": "The same credential in the URL, for `EventSource` (the SSE stream only)",
    },
}


def operation_id(route: APIRoute) -> str:
    """A route's `operationId`: its name, the function's (`patch_widget`), which client
    generators turn into method names; FastAPI's default appends the path and method
    (`patch_widget_api_boards__slug__widgets__key__patch`)."""
    return route.name


def error_response(status: int) -> dict[str, Any]:
    """The OpenAPI response object of one error status."""
    response: dict[str, Any] = {
        "description": STATUS_TEXT[status],
        "content": {"application/json": {"schema": ERROR_SCHEMA}},
    }
    if status == 429:
        response["headers"] = {"Retry-After": RETRY_AFTER}
    return response


def errors(*statuses: int, etag: tuple[int, ...] = ()) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the error statuses its own code raises, and the success
    statuses whose response carries an `ETag`."""
    responses: dict[int | str, dict[str, Any]] = {s: error_response(s) for s in statuses}
    for status in etag:
        responses[status] = {"headers": {"ETag": ETAG}}
    return responses


def _calls(dependant: Dependant) -> Iterator[Any]:
    for dependency in dependant.dependencies:
        yield dependency.call
        yield from _calls(dependency)


def _never_null(parameter: dict[str, Any]) -> None:
    """An optional parameter is absent, never `null`: a header or a query string carries
    text, and `null` in it is refused. FastAPI writes `X | None` as `anyOf [X, null]`."""
    schema = parameter["schema"]
    kept = [s for s in schema.get("anyOf", ()) if s != {"type": "null"}]
    if len(kept) == 1:
        del schema["anyOf"]
        parameter["schema"] = {**kept[0], **schema}


def _describe(operation: dict[str, Any], method: str, dependant: Dependant) -> None:
    """Add to one operation what the machinery around its route answers."""
    for parameter in operation.get("parameters", ()):
        _never_null(parameter)
    responses: dict[str, Any] = operation["responses"]
    calls = set(_calls(dependant))
    statuses = {s for call in calls & DEPENDENCY_ERRORS.keys() for s in DEPENDENCY_ERRORS[call]}
    if operation.get("parameters") or "requestBody" in operation:
        statuses.add(422)
    if method in WRITE_METHODS:
        statuses.update(WRITE_ERRORS)
        operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY)
        for code, response in responses.items():
            if code.startswith("2"):
                response.setdefault("headers", {})["Idempotent-Replayed"] = REPLAYED
    for status in statuses:
        responses[str(status)] = error_response(status)  # replaces FastAPI's own 422
    if calls & {current_principal, stream_principal}:
        operation.setdefault("security", [{BEARER: []}])
    operation["responses"] = dict(sorted(responses.items()))


def _routes(app: FastAPI) -> Iterator[tuple[str, str, Dependant]]:
    """(path template, method, dependencies) of every documented operation, with the
    routers' prefixes applied as FastAPI applies them."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.include_in_schema and context.path_format:
            for method in sorted(context.methods or ()):
                yield context.path_format, method.lower(), route.dependant


def install(app: FastAPI) -> None:
    """Make `app.openapi()` (and so `/openapi.json` and `/docs`) the truthful document."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = generate()
        for path, method, dependant in _routes(app):
            _describe(document["paths"][path][method], method, dependant)
        components = document.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        error_schema = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(error_schema.pop("$defs", {}))
        schemas["ErrorResponse"] = error_schema
        components["securitySchemes"] = SECURITY_SCHEMES
        return document

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend
