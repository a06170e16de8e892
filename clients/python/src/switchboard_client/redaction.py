"""Credentials out of log lines, on the server and in the Python client (stdlib only).

Text is redacted before anything shortens it: a line cut in the middle keeps both ends,
and both ends of a secret are most of it. So a WebSocket frame is never logged as the
`websockets` library prints it (cut to 75 characters first): `RedactCredentials` turns
the frame into its own description, with the credential fields of a JSON frame replaced
(structurally: parsed, never by looking for a shape), then redacts the text, then cuts
it. A handshake header named like a credential is logged without its value, and every
credential the server was configured with is replaced wherever it appears, whatever
its shape (a bootstrap key need not look like `sbk_…`).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from websockets.exceptions import ProtocolError
from websockets.frames import Close, Frame, Opcode

REDACTED = "[redacted]"
SECRET_FIELDS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
"""Headers (and structured log fields) whose value is always a credential."""
FRAME_CREDENTIALS = frozenset({"token"})
"""Fields of a client frame that hold a credential (`auth`'s `token`)."""
MIN_LITERAL = 8
"""Configured credentials shorter than this are not replaced literally (they would blank
common words); the shape-based rules and the structural ones still apply to them."""
FRAME_LOG_SIZE = 200
"""Characters of a frame's (redacted) text kept in a log line."""

_SECRET_IN_QUERY = re.compile(r"((?:^|[?&])token=)[^&\s\"'#]*")
_BEARER = re.compile(r"(\bBearer\s+)[^\s\"',;]+", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@/\s]+@")
_API_KEY = re.compile(r"(\bsbk_[A-Za-z0-9]+_)[A-Za-z0-9_-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_TOKEN_FIELD = re.compile(r"(\"token\"\s*:\s*\")[^\"]*(\"?)")
_literals: set[str] = set()


def register_secret(value: str | None) -> None:
    """Replace `value` wherever it appears in a log line of this process from now on."""
    if value and len(value) >= MIN_LITERAL:
        _literals.add(value)


def redact(text: str) -> str:
    """Hide credentials: configured ones literally; `?token=` (browsers' only way on
    WebSocket and SSE), `Bearer …`, a URL's password (`redis://:pw@host`); anything shaped
    like an API key's secret or a viewer token; a JSON `"token"` field, even cut short."""
    for literal in sorted(_literals, key=len, reverse=True):
        text = text.replace(literal, REDACTED)
    text = _SECRET_IN_QUERY.sub(rf"\1{REDACTED}", text)
    text = _BEARER.sub(rf"\1{REDACTED}", text)
    text = _URL_PASSWORD.sub(rf"\1{REDACTED}@", text)
    text = _API_KEY.sub(rf"\1{REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    return _TOKEN_FIELD.sub(rf"\1{REDACTED}\2", text)


def _without_credentials(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if k in FRAME_CREDENTIALS else _without_credentials(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_without_credentials(item) for item in value]
    return value


def describe_frame(frame: Frame) -> str:
    """A frame for a log line: a whole JSON text frame without its credential fields, then
    redacted, then cut; a fragment (which may hold part of a credential no rule can
    recognise), binary data and pings by their size alone; a close frame's reason redacted."""
    size = f"[{len(frame.data)} bytes]"
    if frame.opcode is Opcode.CLOSE:
        try:
            return f"CLOSE {redact(str(Close.parse(frame.data)))} {size}"
        except (ProtocolError, UnicodeDecodeError):
            return f"CLOSE (malformed) {size}"
    if frame.opcode is not Opcode.TEXT or not frame.fin:
        return f"{frame.opcode.name} (not shown) {size}"
    try:
        parsed = _without_credentials(json.loads(bytes(frame.data)))
        text = json.dumps(parsed, ensure_ascii=False, separators=(",", ":"))
    except ValueError:  # not JSON (or not UTF-8): only what the rules recognise is hidden
        text = bytes(frame.data).decode(errors="replace")
    text = redact(text)
    if len(text) > FRAME_LOG_SIZE:
        text = f"{text[: FRAME_LOG_SIZE - 40]}…{text[-39:]}"
    return f"TEXT {text!r} {size}"


def _safe_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """`record.args` with frames described, strings redacted, and the value after a
    credential header's name (`"< %s: %s"`, name then value) replaced whole."""
    safe: list[Any] = []
    for arg in args:
        if safe and isinstance(safe[-1], str) and safe[-1].lower() in SECRET_FIELDS:
            safe.append(REDACTED)
        elif isinstance(arg, Frame):
            safe.append(describe_frame(arg))
        elif isinstance(arg, str):
            safe.append(redact(arg))
        else:
            safe.append(arg)
    return tuple(safe)


class RedactCredentials(logging.Filter):
    """Applied to a record before it is formatted (on a handler, or on the logger that
    creates it), so that no formatter ever sees a credential in its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = _safe_args(record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def quiet_logger(name: str) -> logging.Logger:
    """A logger that redacts every record it creates itself (for a library that takes a
    logger, such as `websockets`: its handshake lines carry `Authorization`)."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactCredentials) for f in logger.filters):
        logger.addFilter(RedactCredentials())
    return logger
