"""WebSocket close codes. 1000–1015 are the standard ones; 4000–4099 mean
"reconnect (with `since`)", 4100–4199 mean "do not reconnect with the same credentials"."""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    SLOW_CONSUMER = 4008
    """The client did not read fast enough; reconnect with `since` to catch up."""
    TOO_MANY_CONNECTIONS = 4029
    """This credential holds too many connections on this worker; retry later, with backoff."""
    UNAUTHORIZED = 4101
    """The credential is missing, invalid, expired or was revoked: get a new one."""
    FORBIDDEN = 4103
    """The connection is not allowed (a browser Origin outside the allowed list)."""
