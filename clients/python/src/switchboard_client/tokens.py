"""Credentials that expire: calling the user's `get_token`, reading a JWT's `exp`, and when
to refresh (the JavaScript client's rule, so both clients behave alike)."""

from __future__ import annotations

import base64
import binascii
import inspect
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime

from switchboard_client.errors import Unauthorized

TokenSource = Callable[[], str | Awaitable[str]]
"""`get_token`: a plain or async callable returning a fresh viewer token (or API key)."""

REFRESH_MARGIN = 30.0
"""Seconds before expiry to refresh, by default (never more than half the time left)."""


class TokenUnavailable(Exception):
    """`get_token` raised: a later call may succeed (the issuer may be down for a moment)."""


async def fresh_token(get_token: TokenSource) -> str:
    """`get_token()`'s token, awaited if need be; `TokenUnavailable` if it raised,
    `Unauthorized` if it returned something that is not a token."""
    try:
        token = get_token()
        if inspect.isawaitable(token):
            token = await token
    except Exception as exc:  # the user's code: any failure is "no token this time"
        raise TokenUnavailable(f"get_token failed: {exc!r}") from exc
    if not isinstance(token, str) or not token:
        raise Unauthorized(f"get_token returned {type(token).__name__}, not a token")
    return token


def expiry(token: str | None) -> float | None:
    """When a JWT expires (its `exp`, seconds since the epoch), read without verifying it
    (the server does that); None for an API key or anything else that is not a JWT."""
    parts = (token or "").split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else None


def parse_expires_at(value: object) -> float | None:
    """An `authed` frame's `expires_at` (ISO 8601, or null for an API key) as epoch seconds."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def refresh_delay(expires_at: float, margin: float) -> float:
    """Seconds from now until the refresh: `margin` before expiry, but never more than half
    the time left, so a short-lived token is not refreshed in a loop."""
    left = expires_at - time.time()
    return max(0.0, left - min(margin, left / 2))
