"""`AsyncClient`: the REST calls and `watch`, on httpx and websockets.

Every call goes through `_request`, the one place that adds the credential, the
`Idempotency-Key` of a write (made once per call, sent on each of its attempts)
and the retry policy; `Client` (sync) runs this same object on a thread of its own.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from contextlib import aclosing
from types import TracebackType
from typing import Any, TypeVar, cast
from urllib.parse import quote

import httpx

from switchboard_client import types as api
from switchboard_client.errors import ConnectionFailed, from_response
from switchboard_client.live import Live, watch_boards
from switchboard_client.retry import RETRIED_STATUSES, Budget, RetryPolicy, retry_after, unsent
from switchboard_client.states import StateChange, describe
from switchboard_client.tokens import REFRESH_MARGIN, TokenSource
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
DEFAULT_TIMEOUT = 10.0
"""Seconds for each HTTP attempt (connect, read, write, pool) when none is given."""
Self = TypeVar("Self", bound="AsyncClient")  # `typing.Self` is Python 3.11+


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
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.base_url = server_url(base_url)
        self.retry = retry
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=self._headers, timeout=timeout
        )

    async def __aenter__(self: Self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled HTTP connections (a running `watch` closes with its iterator)."""
        await self._http.aclose()

    # Boards.

    async def list_boards(
        self, *, cursor: str | None = None, limit: int | None = None
    ) -> api.BoardPage:
        """One page of the boards this credential may see, by slug (`limit` of them, the
        server's default page size without it); pass its `next_cursor` for the next."""
        params = _present(cursor=cursor, limit=limit)
        return cast(api.BoardPage, await self._read("/api/boards", params))

    async def iter_boards(self, *, page_size: int | None = None) -> AsyncGenerator[api.Board, None]:
        """Every board this credential may see, by slug, fetched a page at a time."""
        cursor: str | None = None
        while True:
            page = await self.list_boards(cursor=cursor, limit=page_size)
            for board in page["items"]:
                yield board
            if page["next_cursor"] is None:
                return
            cursor = page["next_cursor"]

    async def create_board(
        self,
        slug: str,
        *,
        title: str = "",
        description: str = "",
        public: bool = False,
        idempotency_key: str | None = None,
    ) -> api.BoardWithWidgets:
        """Create a board (`Conflict` if the slug exists); the board as created."""
        body = {"slug": slug, "title": title, "description": description, "public": public}
        board = await self._write("POST", "/api/boards", body, key=idempotency_key)
        return cast(api.BoardWithWidgets, board)

    async def get_board(self, board: str) -> api.BoardWithWidgets:
        """The board with all its widgets and its current `seq`."""
        return cast(api.BoardWithWidgets, await self._read(_board(board)))

    async def update_board(
        self,
        board: str,
        *,
        title: str | None = None,
        description: str | None = None,
        public: bool | None = None,
        layout: Iterable[Mapping[str, Any]] | None = None,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> api.Board:
        """Change the fields given (the others stay); with `version`, only if that is still
        the board's version (`PreconditionFailed` otherwise). The board, without widgets.
        `layout`: the widgets' order and sizes, `[{"key": "cpu", "w": 2, "h": 1}, …]`
        (`w`/`h` may be left out: the kind's default); `[]` goes back to the defaults."""
        entries = None if layout is None else [dict(entry) for entry in layout]
        body = _present(title=title, description=description, public=public, layout=entries)
        changed = await self._write(
            "PATCH", _board(board), body, key=idempotency_key, headers=_if_match(version)
        )
        return cast(api.Board, changed)

    async def delete_board(
        self, board: str, *, version: int | None = None, idempotency_key: str | None = None
    ) -> None:
        """Delete a board and its widgets; with `version`, only at that version."""
        await self._write(
            "DELETE", _board(board), None, key=idempotency_key, headers=_if_match(version)
        )

    # Widgets.

    async def get_widget(self, board: str, key: str) -> api.Widget:
        """One widget; its `version` is what `set(…, version=)` compares."""
        return cast(api.Widget, await self._read(_widget(board, key)))

    async def put_widget(
        self,
        board: str,
        key: str,
        *,
        kind: str,
        title: str = "",
        config: Mapping[str, Any] | None = None,
        value: Any = None,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> api.Widget:
        """Create or wholly replace a widget (`kind`: number, text, status, gauge, series);
        with `version`, replace only that version."""
        body = {"kind": kind, "title": title, "config": dict(config or {}), "value": value}
        widget = await self._write(
            "PUT", _widget(board, key), body, key=idempotency_key, headers=_if_match(version)
        )
        return cast(api.Widget, widget)

    async def delete_widget(
        self,
        board: str,
        key: str,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> None:
        """Delete a widget; with `version`, only at that version."""
        await self._write(
            "DELETE", _widget(board, key), None, key=idempotency_key, headers=_if_match(version)
        )

    async def set(
        self,
        board: str,
        key: str,
        value: Any,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
    ) -> api.Widget:
        """Set one widget's value; with `version`, only if that is still its version
        (`PreconditionFailed` otherwise). The widget as the server now has it."""
        widget = await self._write(
            "PATCH",
            _widget(board, key),
            {"value": value},
            key=idempotency_key,
            headers=_if_match(version),
        )
        return cast(api.Widget, widget)

    async def update(
        self, board: str, values: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> list[api.Widget]:
        """Set several widgets' values in one write: all or nothing, one `widgets.updated`
        event, one seq. The changed widgets, in the order given."""
        body = {"widgets": {key: {"value": value} for key, value in values.items()}}
        path = f"{_board(board)}/widgets"
        changed = await self._write("PATCH", path, body, key=idempotency_key)
        return cast(list[api.Widget], changed["widgets"])

    async def append_points(
        self,
        board: str,
        key: str,
        points: Iterable[Point],
        *,
        idempotency_key: str | None = None,
    ) -> api.Widget:
        """Append points to a `series` widget (it keeps its newest `config.max_points`)."""
        body = {"points": [{"v": p} if isinstance(p, int | float) else dict(p) for p in points]}
        path = f"{_widget(board, key)}/points"
        return cast(api.Widget, await self._write("POST", path, body, key=idempotency_key))

    # Events.

    async def list_events(
        self, board: str, *, after: int = 0, limit: int | None = None
    ) -> api.EventPage:
        """One page of the stored events with seq > `after`, oldest first; continue from
        its `next_after`. `HistoryExpired` if some were trimmed by retention."""
        path = f"{_board(board)}/events"
        page = await self._read(path, _present(after=after, limit=limit))
        page["items"] = [{"type": "event", **item} for item in page["items"]]
        return cast(api.EventPage, page)

    async def iter_events(
        self, board: str, *, after: int = 0, page_size: int | None = None
    ) -> AsyncGenerator[Event, None]:
        """Every stored event with seq > `after`, oldest first, fetched a page at a time
        (up to the board's seq when the last page was read)."""
        next_after: int | None = after
        while next_after is not None:
            page = await self.list_events(board, after=next_after, limit=page_size)
            for event in page["items"]:
                yield event
            next_after = page["next_after"]

    async def events(self, board: str, *, after: int = 0, limit: int | None = None) -> list[Event]:
        """Stored events with seq > `after`, oldest first (every page, or the first `limit`),
        shaped as `watch` yields them. `HistoryExpired` if some were trimmed by retention."""
        found: list[Event] = []
        async with aclosing(self.iter_events(board, after=after, page_size=limit)) as events:
            async for event in events:
                found.append(event)
                if len(found) == limit:
                    break
        return found

    # Credentials.

    async def mint_token(
        self,
        *,
        role: api.TokenRole = "read",
        boards: Iterable[str] | None = None,
        ttl: int | None = None,
        idempotency_key: str | None = None,
    ) -> api.Token:
        """A short-lived viewer token for a browser or another client, never allowing more
        than this client's credential: `boards` (default: the credential's) for `ttl`
        seconds (default: the server's, 900 unless configured; capped by it)."""
        body: JSON = {"role": role, **_present(ttl=ttl)}
        if boards is not None:
            body["boards"] = list(boards)
        return cast(api.Token, await self._write("POST", "/api/tokens", body, key=idempotency_key))

    async def create_key(
        self,
        role: api.Role,
        *,
        boards: Iterable[str] | None = None,
        name: str = "",
        idempotency_key: str | None = None,
    ) -> api.NewKey:
        """A new API key (admin only), limited to `boards` if given; its secret (`key`) is
        in this answer and never again."""
        body: JSON = {"role": role, "name": name}
        if boards is not None:
            body["boards"] = list(boards)
        return cast(api.NewKey, await self._write("POST", "/api/keys", body, key=idempotency_key))

    async def list_keys(self) -> list[api.Key]:
        """Every API key, revoked ones included, without their secrets (admin only)."""
        return cast(list[api.Key], (await self._read("/api/keys"))["items"])

    async def revoke_key(self, key_id: str, *, idempotency_key: str | None = None) -> None:
        """Revoke a key at once (admin only): its requests get `Unauthorized`, its open
        connections are closed."""
        path = f"/api/keys/{quote(key_id, safe='')}"
        await self._write("DELETE", path, None, key=idempotency_key)

    def connect(
        self,
        *,
        get_token: TokenSource | None = None,
        on_state: Callable[[StateChange], None] | None = None,
        refresh_margin: float = REFRESH_MARGIN,
    ) -> Live:
        """One live WebSocket for any number of boards: `async with sb.connect() as live:`,
        then `sub = await live.subscribe(board, since=None)` and `async for frame in sub`.
        It reconnects by itself, forever (each attempt bounded by `timeout`, each retry
        logged at INFO and reported to `on_state`), and resumes every subscription from
        the last seq it delivered. With `get_token` (a plain or async callable returning a
        fresh token), the credential is refreshed before it expires, and a close 4101
        reconnects with a fresh token instead of raising `Unauthorized`."""
        return Live(
            ws_url(self.base_url),
            token=self._headers.get("Authorization", "").removeprefix("Bearer ") or None,
            get_token=get_token,
            timeout=self._http.timeout.connect or 10.0,
            policy=self.retry,
            on_state=on_state,
            refresh_margin=refresh_margin,
        )

    def watch(
        self,
        *boards: str,
        since: int | Mapping[str, int] | None = None,
        get_token: TokenSource | None = None,
        on_state: Callable[[StateChange], None] | None = None,
    ) -> AsyncGenerator[Frame, None]:
        """Boards live, over one connection: for each, a `Snapshot` first (unless its
        `since` is given: then the events after it), then every `Event`, in seq order,
        each once; frames of several boards come interleaved (`channel` says whose).
        `since` is a seq for one board, or `{board: seq}`. It reconnects by itself (with
        backoff) and resumes each board from the last seq it yielded; a `Snapshot` with
        `reset` True replaces a board whose history to resume from is gone. Ends only
        when the caller stops iterating (`aclose()`, or leaving an `async for`), or with
        `Unauthorized`, `NotFound`, `Forbidden` or `ConnectionClosed`. `get_token` and
        `on_state` are `connect`'s."""
        if not boards:
            raise ValueError("watch needs at least one board")
        if isinstance(since, int) and len(boards) > 1:
            raise ValueError("since=N is for one board: pass {board: seq, ...} for several")
        positions = {boards[0]: since} if isinstance(since, int) else dict(since or {})
        live = self.connect(get_token=get_token, on_state=on_state)
        return watch_boards(live, boards, positions)

    async def _read(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        return (await self._request("GET", path, params=params)).json()

    async def _write(
        self,
        method: str,
        path: str,
        body: JSON | None,
        *,
        key: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send a write; its JSON answer (None for a 204)."""
        response = await self._request(
            method, path, json=body, write=True, key=key, headers=headers
        )
        return response.json() if response.content else None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: JSON | None = None,
        params: Mapping[str, str | int] | None = None,
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
                reason = describe(exc, self._http.timeout.connect or DEFAULT_TIMEOUT)
                if wait is None:
                    raise ConnectionFailed(f"{method} {path}: {reason}") from exc
                where = self._http.base_url.netloc.decode()
                log.info("%s: %s; retry %d in %.1f s", where, reason, budget.attempt, wait)
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


def _present(**fields: Any) -> JSON:
    """The fields that were given (not None): optional query parameters and PATCH fields."""
    return {name: value for name, value in fields.items() if value is not None}


def _if_match(version: int | None) -> dict[str, str] | None:
    """`If-Match` for a write that must find this version (its `ETag`), if one is given."""
    return {"If-Match": f'"{version}"'} if version is not None else None
