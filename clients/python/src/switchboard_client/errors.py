"""Typed failures: every error the server answers, as the exception its `code` names.

The server's errors are `{"error": {"code", "message", "details"?}}` with an HTTP
status; `SwitchboardError` carries all of it, and each stable `code` has its own
subclass so callers can `except NotFound:` instead of comparing strings.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx


class SwitchboardError(Exception):
    """Base of every failure the client raises: `code` is stable, `message` is for people,
    `status` is the HTTP status (None when the failure did not come from an HTTP answer),
    `details` the server's, `retry_after` its `Retry-After` in seconds (429, 503)."""

    code: str
    default_code: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.status = status
        self.details = details
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status}, {self.message!r})"


class BadRequest(SwitchboardError):
    """Raised for a request the server could not parse (400)."""

    default_code = "bad_request"


class Unauthorized(SwitchboardError):
    """Raised when the credential is missing, invalid, expired or revoked (401, or a
    WebSocket closed with 4101): a new credential is needed, retrying cannot help."""

    default_code = "unauthorized"


class Forbidden(SwitchboardError):
    """Raised when the credential's role does not allow the action (403, or close 4103)."""

    default_code = "forbidden"


class NotFound(SwitchboardError):
    """Raised when the board or widget does not exist or this credential may not read it
    (404; on `watch`, also when a live subscription loses access to its board)."""

    default_code = "not_found"


class Conflict(SwitchboardError):
    """Raised when the write conflicts with the current state (409: the board exists)."""

    default_code = "conflict"


class HistoryExpired(SwitchboardError):
    """Raised by `events(after=N)` when events after N are no longer retained (410):
    read the board, then continue from its `seq`."""

    default_code = "history_expired"


class PreconditionFailed(SwitchboardError):
    """Raised when the `version` given is not the current one (412)."""

    default_code = "precondition_failed"


class PayloadTooLarge(SwitchboardError):
    """Raised when the body (or a batch's event) is over the server's limit (413)."""

    default_code = "payload_too_large"


class ValidationError(SwitchboardError):
    """Raised when the server refuses the values sent (422); `details` says where."""

    default_code = "validation_error"


class RateLimited(SwitchboardError):
    """Raised when writes stayed rate limited (429) after every retry the policy allows."""

    default_code = "rate_limited"


class Unavailable(SwitchboardError):
    """Raised when the server stayed unavailable (503) after every retry."""

    default_code = "unavailable"


class ConnectionFailed(SwitchboardError):
    """Raised when the server could not be reached (or the connection broke) after every
    retry; `__cause__` is the last transport error."""

    default_code = "connection_failed"


class ConnectionClosed(SwitchboardError):
    """Raised by `watch` when the server closed the WebSocket with a code that says not
    to reconnect as is (a frame the server cannot take, a protocol error)."""

    default_code = "closed"

    def __init__(self, message: str, *, close_code: int) -> None:
        super().__init__(message)
        self.close_code = close_code


BY_CODE: dict[str, type[SwitchboardError]] = {
    cls.default_code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        Conflict,
        HistoryExpired,
        PreconditionFailed,
        PayloadTooLarge,
        ValidationError,
        RateLimited,
        Unavailable,
    )
}
BY_STATUS: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    410: "history_expired",
    412: "precondition_failed",
    413: "payload_too_large",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


def raised_for(code: str, message: str, **fields: Any) -> SwitchboardError:
    """The exception for an error `code` (a `SwitchboardError` for codes it does not know)."""
    return BY_CODE.get(code, SwitchboardError)(message, code=code, **fields)


def from_response(
    response: httpx.Response, *, retry_after: float | None = None
) -> SwitchboardError:
    """The exception for an error response: its JSON error shape when it has one (a proxy
    in front may answer in HTML), else what its status means."""
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = error.get("details")
    except (ValueError, KeyError, TypeError):
        code = BY_STATUS.get(response.status_code, "http_error")
        message, details = f"HTTP {response.status_code}: {response.text[:200]}", None
    return raised_for(
        code, message, status=response.status_code, details=details, retry_after=retry_after
    )
