"""Typed failures and the one JSON error shape: `{"error": {"code", "message"}}`.

Every expected failure is an `AppError` subclass carrying its HTTP status and
code; anything else becomes a 500 with a generic message (details go to the
log, never to the client).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import asyncpg  # type: ignore[import-untyped]
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = structlog.get_logger(__name__)


class ErrorDetail(BaseModel):
    """One thing wrong with a request: where (`loc`) and what (`msg`)."""

    loc: list[str] = Field(description='Where in the request, e.g. ["body", "widgets", "cpu"]')
    msg: str


class ErrorBody(BaseModel):
    """What went wrong."""

    code: str = Field(description="Stable, for programs: `not_found`, `validation_error`, …")
    message: str = Field(description="For people")
    details: list[ErrorDetail] | SkipJsonSchema[None] = Field(  # absent, never null
        default=None,
        description="Request validation errors and refused batch writes only: every failing field",
    )


class ErrorResponse(BaseModel):
    """Every error response, whatever the route."""

    # The OpenAPI document's error schema: `AppError.body` and `error_response` send it.

    error: ErrorBody


class AppError(Exception):
    """Base of every error a client may see."""

    status_code: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"

    def __init__(
        self, message: str, *, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class BadRequest(AppError):
    """Raised for a request that cannot be parsed (malformed JSON, bad cursor)."""


class InvalidJson(BadRequest):
    """Raised for a request body that is not JSON (or nested too deeply to read)."""

    code = "invalid_json"


class Unauthorized(AppError):
    """Raised when a credential is needed, or the one given is invalid, expired or revoked."""

    status_code = 401
    code = "unauthorized"


class Forbidden(AppError):
    """Raised when a valid credential's role does not allow the action."""

    status_code = 403
    code = "forbidden"


class NotFound(AppError):
    """Raised when a board or widget does not exist (or is outside the caller's scope)."""

    status_code = 404
    code = "not_found"


class Conflict(AppError):
    """Raised when creating something that already exists."""

    status_code = 409
    code = "conflict"


class PreconditionFailed(AppError):
    """Raised when `If-Match` names a version that is no longer current."""

    status_code = 412
    code = "precondition_failed"


class ValidationFailed(AppError):
    """Raised when a well-formed request carries values the resource does not accept."""

    status_code = 422
    code = "validation_error"


class Gone(AppError):
    """Raised when asked for history older than what is retained."""

    status_code = 410
    code = "history_expired"


class PayloadTooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


class RateLimited(AppError):
    """Raised when a credential writes faster than its limit; `Retry-After` says when to retry."""

    status_code = 429
    code = "rate_limited"


class ServiceUnavailable(AppError):
    """Raised when the database cannot be reached, or lost the answer to a write (its
    message says which: `database_error`)."""

    status_code = 503
    code = "unavailable"


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message, **extra}
    return JSONResponse({"error": error}, status_code=status)


def invalid_request(errors: Sequence[Mapping[str, Any]]) -> AppError:
    """What a client is told of a request that does not validate (pydantic's errors, as
    FastAPI's `RequestValidationError` or the widget PATCH's own body check carry them):
    `invalid_json` if the body is not JSON, else 422 with every failing field."""
    if any(err.get("type") == "json_invalid" for err in errors):
        return InvalidJson("request body is not valid JSON")
    details = [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", ""))}
        for err in errors
    ]
    return ValidationFailed("request is not valid", details=details)


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return await _app_error(request, invalid_request(exc.errors()))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _STATUS_CODES.get(exc.status_code, "error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    response = error_response(exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


class OutcomeUnknown(Exception):
    """A write's statement or COMMIT was sent and its connection died before PostgreSQL's
    answer arrived: it may have committed. Raised by the store from the error that says so
    (its `__cause__`); never retried there."""


NOTHING_WRITTEN = "the database is unavailable; nothing was written"
UNKNOWN_OUTCOME = (
    "the database connection was lost after the write was sent: whether it was applied is"
    " unknown. Retry with the same Idempotency-Key to get its outcome (without one, read"
    " the resource to find out)"
)
READ_FAILED = "the database is unavailable; try again"


DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OutcomeUnknown,
    DBAPIError,
    asyncpg.PostgresError,  # asyncpg's own, from the direct statements (`store.patch`)
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,  # asyncpg's pool (`Database.direct`)
    PoolTimeout,  # SQLAlchemy's pool: no connection within its timeout, nothing sent
)


def database_error(exc: Exception, path: str, *, write: bool) -> AppError:
    """What a client is told of a failure of the store (any of `DATABASE_ERRORS`) while
    serving a write (`write`) or a read. A write is said to have written nothing only
    when that is sure: a lost answer (`OutcomeUnknown`) says the outcome is unknown and
    how to learn it; any other failure of a write came before its COMMIT (or its
    autocommitted statement) was sent, so PostgreSQL rolled it back."""
    if isinstance(exc, IntegrityError | asyncpg.IntegrityConstraintViolationError):
        return Conflict("the change conflicts with the current state")
    if isinstance(exc, DataError | asyncpg.DataError):
        return ValidationFailed("a value is out of range for the store")
    cause = exc.__cause__ if isinstance(exc, OutcomeUnknown) else exc
    log.warning("database_unavailable", path=path, error=repr(cause), unknown=cause is not exc)
    if cause is not exc:
        return ServiceUnavailable(UNKNOWN_OUTCOME)
    return ServiceUnavailable(NOTHING_WRITTEN if write else READ_FAILED)


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    write = request.method not in READ_METHODS
    return await _app_error(request, database_error(exc, request.url.path, write=write))


async def _too_deep(request: Request, exc: Exception) -> JSONResponse:
    return await _app_error(request, InvalidJson("request body is nested too deeply"))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled_error", path=request.url.path, method=request.method)
    return error_response(500, "internal", "internal server error")


def install_error_handlers(app: FastAPI) -> None:
    """Route every failure through the one JSON error shape."""
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for exc in DATABASE_ERRORS:
        app.add_exception_handler(exc, _database_error)
    app.add_exception_handler(RecursionError, _too_deep)
    app.add_exception_handler(Exception, _unexpected)
