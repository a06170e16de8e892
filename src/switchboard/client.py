"""A small client for shells and integrations: push a value, tail a board live.

`tail` keeps its place: on a dropped connection it reconnects with `since` = the
last seq it printed, so it prints every event once, in order.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

FATAL = frozenset({"not_found", "unauthorized"})


def push(base_url: str, slug: str, key: str, value: Any, *, token: str | None = None) -> Any:
    """PATCH a widget's value; returns the widget as the server now has it."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.patch(
        f"{base_url.rstrip('/')}/api/boards/{slug}/widgets/{key}",
        json={"value": value},
        headers=headers,
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def ws_url(base_url: str) -> str:
    scheme, rest = base_url.rstrip("/").split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"


async def tail(
    base_url: str,
    slug: str,
    on_frame: Callable[[dict[str, Any]], None],
    *,
    since: int | None = None,
    token: str | None = None,
    max_backoff: float = 10.0,
) -> None:
    """Print-loop over a board's frames, reconnecting with `since` forever."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    position, attempt = since, 0
    while True:
        try:
            async with connect(ws_url(base_url), additional_headers=headers) as ws:
                frame: dict[str, Any] = {"type": "subscribe", "channel": f"board:{slug}"}
                if position is not None:
                    frame["since"] = position
                await ws.send(orjson.dumps(frame).decode())
                async for raw in ws:
                    message = orjson.loads(raw)
                    attempt = 0
                    if message.get("type") in ("snapshot", "event"):
                        position = message["seq"]
                    on_frame(message)
                    if message.get("type") == "error" and message.get("code") in FATAL:
                        return  # retrying cannot help: no such board, or a dead credential
        except (OSError, WebSocketException):
            pass
        attempt += 1
        await asyncio.sleep(min(max_backoff, 0.2 * 2**attempt) * random.uniform(0.5, 1.0))
