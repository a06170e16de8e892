"""`AsyncClient`: the REST calls and `watch`, on httpx and websockets.

Every call goes through `_request`, the one place that adds the credential, the
`Idempotency-Key` of a write (made once per call, sent on each of its attempts)
and the retry policy; `Client` (sync) runs this same object on a thread of its own.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Iterable, Mapping
from types import TracebackType
from typing import Any, Self, cast
from urllib.parse import quote

import httpx

from switchboard_client import watch as watching
from switchboard_client.errors import ConnectionFailed, from_response
from switchboard_client.retry import RETRIED_STATUSES, Budget, RetryPolicy, retry_after, unsent
from switchboard_client.urls import server_url
from switchboard_client.watch import Event, Frame

log = logging.getLogger("switchboard_client")

JSON = dict[str, Any]
Point = float | Mapping[str, Any]
"""A series point: a number, or `{"v": number, "t": iso8601}` (`t` defaults to now)."""
AMBIGUOUS_STATUSES = frozenset({502, 503, 504})
"""The request may have been applied: a proxy gave up on the server (502, 504), or the
server lost the answer to its write's COMMIT (503, "whether it was applied is unknown");
its key's claim may then still be held (409) for a while."""


class AsyncClient:
    """A Switchboard server's API for asyncio code: `async with AsyncClient(url, token=…)`.

    Writes retry 429 (waiting `Retry-After`), 502/503/504 and connection failures under
    `retry`, each with one automatic `Idempotency-Key`, so a retried write is applied
    once; reads retry the same way. Failures raise `SwitchboardError` subclasses."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.base_url = server_url(base_url)
        self.retry = retry
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers, timeout=timeout
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled HTTP connections (a running `watch` closes with its iterator)."""
        await self._http.aclose()

    async def create_board(
        self,
        slug: str,
        *,
        title: str = "",
        description: str = "",
        public: bool = False,
        idempotency_key: str | None = None,
    ) -> JSON:
        """Create a board (`Conflict` if the slug exists); the board as created."""
        body = {"slug": slug, "title": title, "description": description, "public": public}
        return await self._write("POST", "/api/boards", body, key=idempotency_key)

    async def get_board(self, board: str) -> JSON:
        """The board with all its widgets and its current `seq`."""
        return (await self._request("GET", _board(board))).json()  # type: ignore[no-any-return]

    async def delete_board(self, board: str, *, idempotency_key: str | None = None) -> None:
        """Delete a board and its widgets."""
        await self._request("DELETE", _board(board), write=True, key=idempotency_key)

    async def put_widget(
        self,
        board: str,
        key: str,
        *,
        kind: str,
        title: str = "",
        config: Mapping[str, Any] | None = None,
        value: Any = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """Create or wholly replace a widget (`kind`: number, text, status, gauge, series)."""
        body = {"kind": kind, "title": title, "config": dict(config or {}), "value": value}
        return await self._write("PUT", _widget(board, key), body, key=idempotency_key)

    async def set(
        self,
        board: str,
        key: str,
        value: Any,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        """Set one widget's value; with `version`, only if that is still its version
        (`PreconditionFailed` otherwise). The widget as the server now has it."""
        headers = {"If-Match": f'"{version}"'} if version is not None else None
        return await self._write(
            "PATCH", _widget(board, key), {"value": value}, key=idempotency_key, headers=headers
        )

    async def update(
        self, board: str, values: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> list[JSON]:
        """Set several widgets' values in one write: all or nothing, one `widgets.updated`
        event, one seq. The changed widgets, in the order given."""
        body = {"widgets": {key: {"value": value} for key, value in values.items()}}
        path = f"{_board(board)}/widgets"
        changed: list[JSON] = (await self._write("PATCH", path, body, key=idempotency_key))[
            "widgets"
        ]
        return changed

    async def append_points(
        self,
        board: str,
        key: str,
        points: Iterable[Point],
        *,
        idempotency_key: str | None = None,
    ) -> JSON:
        """Append points to a `series` widget (it keeps its newest `config.max_points`)."""
        body = {"points": [{"v": p} if isinstance(p, int | float) else dict(p) for p in points]}
        path = f"{_widget(board, key)}/points"
        return await self._write("POST", path, body, key=idempotency_key)

    async def events(self, board: str, *, after: int = 0, limit: int | None = None) -> list[Event]:
        """Stored events with seq > `after`, oldest first (every page, or the first `limit`),
        shaped as `watch` yields them. `HistoryExpired` if some were trimmed by retention."""
        found: list[Event] = []
        while limit is None or len(found) < limit:
            params = {"after": after} if limit is None else {"after": after, "limit": limit}
            page = (await self._request("GET", f"{_board(board)}/events", params=params)).json()
            found.extend(cast(Event, {"type": "event", **item}) for item in page["items"])
            if page["next_after"] is None:
                break
            after = page["next_after"]
        return found[:limit]

    def watch(self, board: str, *, since: int | None = None) -> AsyncGenerator[Frame, None]:
        """The board live: a `Snapshot` first (unless `since` is given: then the events after
        it), then every `Event`, in seq order, each once. It reconnects by itself (with
        backoff) and resumes from the last seq it yielded; a `Snapshot` with `reset` True
        replaces the board when the history to resume from is gone. Ends only when the
        caller stops iterating (`aclose()`, or leaving an `async for`), or with
        `Unauthorized`, `NotFound`, `Forbidden` or `ConnectionClosed`."""
        return watching.watch(
            ws_url(self.base_url),
            f"board:{board}",
            headers=self._headers,
            since=since,
            policy=self.retry,
        )

    async def _write(
        self,
        method: str,
        path: str,
        body: JSON,
        *,
        key: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> JSON:
        response = await self._request(
            method, path, json=body, write=True, key=key, headers=headers
        )
        return response.json()  # type: ignore[no-any-return]

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: JSON | None = None,
        params: Mapping[str, int] | None = None,
        write: bool = False,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """Send under the retry policy; the successful response, or the typed failure.

        A 409 is retried only after an attempt whose fate is unknown (sent, then the
        connection broke or a proxy gave up): it is the server saying the first attempt's
        key is still in progress, and its retry will be answered with that first response."""
        sent = dict(headers or {})
        if write:
            sent["Idempotency-Key"] = key or f"sbc-{uuid.uuid4().hex}"
        budget, maybe_applied = Budget(self.retry), False
        while True:
            try:
                response = await self._http.request(
                    method, path, json=json, params=params, headers=sent
                )
            except httpx.TransportError as exc:
                maybe_applied = maybe_applied or not unsent(exc)
                wait = budget.next_delay()
                if wait is None:
                    raise ConnectionFailed(f"{method} {path}: {exc!r}") from exc
                log.debug("%s %s: %r, retrying in %.2f s", method, path, exc, wait)
            else:
                if response.is_success:
                    return response
                status = response.status_code
                retried = status in RETRIED_STATUSES or (status == 409 and write and maybe_applied)
                after = retry_after(response)
                wait = budget.next_delay(after) if retried else None
                if wait is None:
                    raise from_response(response, retry_after=after)
                maybe_applied = maybe_applied or status in AMBIGUOUS_STATUSES
                log.debug("%s %s: HTTP %s, retrying in %.2f s", method, path, status, wait)
            await asyncio.sleep(wait)


def ws_url(base_url: str) -> str:
    """The `/ws` endpoint of a server at `base_url` (https → wss)."""
    scheme, rest = base_url.rstrip("/").split("://", 1)
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/ws"


def _board(board: str) -> str:
    return f"/api/boards/{quote(board, safe='')}"


def _widget(board: str, key: str) -> str:
    return f"{_board(board)}/widgets/{quote(key, safe='')}"
