"""A live connection's states, as callbacks and iterators see them, and the one short line
logged at INFO for each failed attempt (the CLI shows those lines as retry progress)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Literal

import httpx
from websockets.exceptions import ConnectionClosed, InvalidStatus

State = Literal["connecting", "connected", "reconnecting", "closed", "failed"]
"""`connecting` (the first attempt), `connected` (open, subscriptions sent), `reconnecting`
(an attempt failed: `attempt`, `error`, `delay` say which, why, and the wait before the
next), `closed` (by the caller), `failed` (for good: `error` is what `watch` raises)."""

log = logging.getLogger("switchboard_client")
TIMEOUTS = (TimeoutError, asyncio.TimeoutError)
"""Both timeouts: distinct classes on Python 3.10 (where some libraries raise the second)."""


@dataclass(frozen=True)
class StateChange:
    """One transition of a live connection."""

    state: State
    attempt: int = 0
    """Failed attempts in a row (on `reconnecting`)."""
    error: BaseException | None = None
    """Why the connection failed or ended (on `reconnecting` and `failed`)."""
    delay: float | None = None
    """Seconds until the next attempt (on `reconnecting`)."""
    reason: str = ""
    """`error`, said briefly for people."""


def describe(exc: BaseException, timeout: float) -> str:
    """What failed, in a few words: "connection refused", "no answer within 10 s"."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (*TIMEOUTS, httpx.TimeoutException)):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, httpx.TransportError):  # a REST call's
        text = str(exc).lower()
        if "refused" in text or "all connection attempts failed" in text:
            return "connection refused"
        if exc.__cause__ is not None:
            return describe(exc.__cause__, timeout)
    if isinstance(exc, ConnectionClosed):
        if exc.rcvd is None:
            return "connection lost"
        reason = f" {exc.rcvd.reason}" if exc.rcvd.reason else ""
        return f"closed by the server ({exc.rcvd.code}{reason})"
    if isinstance(exc, InvalidStatus):
        return f"handshake refused with HTTP {exc.response.status_code}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


def log_retry(where: str, change: StateChange) -> None:
    """`where: what failed; retry N in D s`, at INFO."""
    log.info("%s: %s; retry %d in %.1f s", where, change.reason, change.attempt, change.delay)
