"""Small ASGI pieces shared by the REST middlewares, and the request body limit."""

from __future__ import annotations

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.errors import AppError, PayloadTooLarge

PRINCIPAL = "switchboard.principal"
"""Request-state key of the caller a middleware already authenticated (same header)."""


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; `PayloadTooLarge` as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request bodies are limited to {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, then: Receive) -> Receive:
    """A `receive` that hands the app a body already read, then listens on `then`."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def respond(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def respond_error(send: Send, exc: AppError) -> None:
    headers = {"content-type": "application/json", **exc.headers}
    await respond(send, exc.status_code, headers, orjson.dumps(exc.body()))


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413 before the app reads any of it."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        try:
            length = header(scope, b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
                raise PayloadTooLarge(f"request bodies are limited to {self.max_bytes} bytes")
            body = await read_body(receive, self.max_bytes)
        except AppError as exc:
            await respond_error(send, exc)
            return
        await self.app(scope, replay(body, receive), send)
