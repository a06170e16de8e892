"""`Idempotency-Key` on writes, as ASGI middleware around the REST API.

A retried request (same key, same method, path and body) gets the first
response back byte for byte and writes and publishes nothing. The key is
claimed in the store before the request runs, marked inside the write's own
transaction, and answered after (see `store/idempotency.py`), so this holds
across workers and across a worker dying mid-request.
"""

from __future__ import annotations

import hashlib
import re

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.errors import AppError, BadRequest, Conflict, ServiceUnavailable, ValidationFailed
from switchboard.state import AppState
from switchboard.store.idempotency import CURRENT_KEY, IdempotencyStore, Outcome

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
KEPT_HEADERS = frozenset({b"content-type", b"etag", b"location"})
MAX_BODY = 1024 * 1024


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _header(scope, b"idempotency-key") if scope["type"] == "http" else None
        if key is None or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        try:
            await self._serve(key, scope, receive, send)
        except AppError as exc:
            await _respond(
                send,
                exc.status_code,
                {"content-type": "application/json"},
                orjson.dumps(exc.body()),
            )

    async def _serve(self, key: str, scope: Scope, receive: Receive, send: Send) -> None:
        if not KEY_PATTERN.fullmatch(key):
            raise BadRequest("Idempotency-Key must be 1 to 255 printable ASCII characters")
        body = await _read_body(receive)
        digest = hashlib.sha256()
        for part in (scope["method"].encode(), scope["raw_path"], scope["query_string"], body):
            digest.update(len(part).to_bytes(8, "big") + part)
        state: AppState = scope["state"]["switchboard"]
        store = IdempotencyStore(state.db, state.settings.idempotency_ttl)
        try:
            claim = await store.claim(key, digest.hexdigest())
        except OSError as exc:
            raise ServiceUnavailable("the database is unavailable") from exc
        match claim.outcome:
            case Outcome.REPLAY:
                headers = [(k.encode(), v.encode()) for k, v in (claim.headers or {}).items()]
                headers.append((b"idempotent-replayed", b"true"))
                await send(
                    {"type": "http.response.start", "status": claim.status, "headers": headers}
                )
                await send({"type": "http.response.body", "body": claim.body})
                return
            case Outcome.MISMATCH:
                raise ValidationFailed(
                    "this Idempotency-Key was already used for a different request"
                )
            case Outcome.IN_PROGRESS:
                raise Conflict("a request with this Idempotency-Key is still in progress")

        status, kept, chunks = 500, dict[str, str](), list[bytes]()

        async def replay_body() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() in KEPT_HEADERS:
                        kept[name.decode().lower()] = value.decode()
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        token = CURRENT_KEY.set(key)
        try:
            await self.app(scope, replay_body, capture)
        finally:
            CURRENT_KEY.reset(token)
            await store.finish(key, status=status, headers=kept, body=b"".join(chunks))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise _TooLarge(f"request bodies are limited to {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class _TooLarge(AppError):
    status_code = 413
    code = "payload_too_large"


async def _respond(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
