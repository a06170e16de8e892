"""`Live`: one WebSocket carrying any number of board subscriptions, kept up for good.

One task owns the connection. It connects (the handshake bounded by the client's
`timeout`), subscribes every board with `since` = that board's position, and reads;
when the connection fails it reports `reconnecting` (and one INFO line), backs off and
does it again, forever, until the caller closes it or a failure that retrying cannot fix
(then every subscription raises it). With `get_token`, a JWT is replaced in band with an
`auth` frame before it expires, and a 4101 close reconnects with a fresh token.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from switchboard_client.errors import (
    ConnectionFailed,
    SwitchboardError,
    Unauthorized,
    raised_for,
)
from switchboard_client.retry import RetryPolicy
from switchboard_client.states import TIMEOUTS, State, StateChange, describe, log_retry
from switchboard_client.subscription import Item, Subscription
from switchboard_client.tokens import (
    REFRESH_MARGIN,
    TokenSource,
    TokenUnavailable,
    expiry,
    fresh_token,
    parse_expires_at,
    refresh_delay,
)
from switchboard_client.watch import (
    MAX_FRAME_BYTES,
    RETRIED_ERRORS,
    SLOW_DOWN,
    WS_LOG,
    Frame,
    Reconnect,
    refuse_close,
    refuse_handshake,
)

log = logging.getLogger("switchboard_client")
T = TypeVar("T")

AUTH_ID = "auth"
"""The `id` of this client's `auth` frames; subscribe replies use the channel as theirs."""
WHO = "who:"
"""Prefix of a `presence` request's `id` (then the channel)."""
AUTH_REFUSALS = 3
"""4101 closes in a row, each after a fresh `get_token`, before giving up."""


class RefreshFailed(Exception):
    """An in-band refresh did not happen; the current credential stays until it expires."""


class Live:
    """A live connection: `async with client.connect() as live:`, then `live.subscribe(…)`.

    `state` is the connection's (`State`); `on_state` is called with each `StateChange`,
    and `states()` iterates them."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        get_token: TokenSource | None,
        timeout: float,
        policy: RetryPolicy,
        on_state: Callable[[StateChange], None] | None = None,
        refresh_margin: float = REFRESH_MARGIN,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.policy = policy
        self.refresh_margin = refresh_margin
        self.state: State = "connecting"
        self.token = token
        self._get_token = get_token
        self._on_state = on_state
        self._where = urlsplit(url).netloc
        self._subs: dict[str, Subscription] = {}
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._watchers: list[asyncio.Queue[StateChange]] = []
        self._asks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._authed: asyncio.Future[dict[str, Any]] | None = None
        self._failures = 0
        self._refusals = 0
        self._error: SwitchboardError | None = None

    async def __aenter__(self) -> Live:
        self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def start(self) -> None:
        """Start connecting (in the background; `async with` does it)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def close(self) -> None:
        """Close the connection; every subscription's iterator ends."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sub in self._subs.values():
            sub.end()
        if self.state not in ("failed", "closed"):
            self._report(StateChange("closed"))

    async def subscribe(self, board: str, *, since: int | None = None) -> Subscription:
        """Watch `board` on this connection: its `Subscription` (an async iterator of its
        frames: a `Snapshot` first unless `since` is given, then every `Event`)."""
        return await self.add(board, since, None)

    async def add(
        self, board: str, since: int | None, sink: asyncio.Queue[Item] | None
    ) -> Subscription:
        """`subscribe`, its frames going to `sink` (shared by several boards) if given."""
        channel = f"board:{board}"
        if self.state == "closed":
            raise RuntimeError("this connection is closed: connect() again")
        if channel in self._subs and not self._subs[channel].ended:
            raise ValueError(f"already subscribed to {board!r} on this connection")
        sub = self._subs[channel] = Subscription(self, board, since, sink)
        self.start()
        if self.state == "failed":
            sub.fail(cast(SwitchboardError, self._error))
        elif self._ws is not None:
            await self._send_subscribe(self._ws, sub)
        return sub

    async def unsubscribe(self, board: str) -> None:
        """Stop watching `board`; its iterator ends (no frame of it follows)."""
        sub = self._subs.pop(f"board:{board}", None)
        if sub is None:
            return
        sub.end()
        if self._ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await self._send(
                    self._ws, {"type": "unsubscribe", "channel": sub.channel, "id": sub.channel}
                )

    def states(self) -> AsyncIterator[StateChange]:
        """The state changes from this call on, until `closed` or `failed`."""
        queue: asyncio.Queue[StateChange] = asyncio.Queue()
        self._watchers.append(queue)
        return self._drain(queue)

    async def _drain(self, queue: asyncio.Queue[StateChange]) -> AsyncIterator[StateChange]:
        try:
            while True:
                change = await queue.get()
                yield change
                if change.state in ("closed", "failed"):
                    return
        finally:
            self._watchers.remove(queue)

    async def ask_presence(self, sub: Subscription) -> dict[str, int]:
        """Send `presence` for `sub` once it is subscribed; the reply's viewers."""
        await within(sub.subscribed.wait(), self.timeout, f"{sub.channel} is not subscribed")
        ws = self._ws
        if ws is None:
            raise ConnectionFailed("not connected")
        asked = self._asks[sub.channel] = asyncio.get_running_loop().create_future()
        await self._send(ws, {"type": "presence", "channel": sub.channel, "id": WHO + sub.channel})
        reply = await within(asked, self.timeout, "no answer to presence")
        sub.viewers = {who: n for who, n in reply["viewers"].items() if n}
        return dict(reply["viewers"])

    # The connection's task.

    async def _run(self) -> None:
        self._report(StateChange("connecting"))
        try:
            while True:
                pause, error = 0.0, await self._attempt()
                if isinstance(error, ConnectionClosed) and error.rcvd is not None:
                    pause = SLOW_DOWN.get(error.rcvd.code, 0.0)
                self._failures += 1
                delay = max(pause, self.policy.delay(self._failures))
                change = StateChange(
                    "reconnecting",
                    attempt=self._failures,
                    error=error,
                    delay=delay,
                    reason=describe(error, self.timeout),
                )
                log_retry(self._where, change)
                self._report(change)
                await asyncio.sleep(delay)
        except SwitchboardError as fatal:
            self._error = fatal
            for sub in self._subs.values():
                sub.fail(fatal)
            self._report(StateChange("failed", error=fatal, reason=str(fatal)))

    async def _attempt(self) -> BaseException:
        """One connection, from handshake to its end: why it ended, if retrying may help
        (a `SwitchboardError` is raised when it cannot)."""
        try:
            if self.token is None and self._get_token is not None:
                self.token = await fresh_token(self._get_token)
            headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
            async with connect(
                self.url,
                additional_headers=headers,
                open_timeout=self.timeout,
                ping_timeout=self.timeout,
                max_size=MAX_FRAME_BYTES,
                logger=WS_LOG,
            ) as ws:
                await self._serve(ws)
        except ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd is not None else 1006
            reason = closed.rcvd.reason if closed.rcvd is not None else ""
            if code == 4101 and self._get_token is not None:
                self._refusals += 1
                if self._refusals > AUTH_REFUSALS:
                    raise Unauthorized(reason or "every fresh token was refused") from None
                self.token = None  # the next attempt asks get_token for a fresh one
            else:
                refuse_close(code, reason)
            return closed
        except InvalidStatus as refused:
            refuse_handshake(refused.response.status_code)
            return refused
        except (OSError, *TIMEOUTS, InvalidHandshake, Reconnect, TokenUnavailable) as exc:
            return exc
        finally:
            self._disconnected()
        raise AssertionError("a connection ends with an exception")  # pragma: no cover

    async def _serve(self, ws: ClientConnection) -> None:
        """Subscribe everything on a new connection, then read it until it ends."""
        self._ws = ws
        pending = list(self._subs.values())  # taken at once: later ones send their own
        for sub in pending:
            await self._send_subscribe(ws, sub)
        self._report(StateChange("connected"))
        if self._failures:
            log.info("%s: connected again", self._where)
        refresher = None
        if self._get_token is not None:
            refresher = asyncio.get_running_loop().create_task(self._refresh(ws))
        try:
            while True:
                await self._dispatch(ws, json.loads(await ws.recv()))
        except asyncio.CancelledError:
            await ws.close()  # closed by the caller: a normal closure, not 1011
            raise
        finally:
            if refresher is not None:
                refresher.cancel()

    async def _dispatch(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        kind, ident = frame.get("type"), frame.get("id")
        if ident == AUTH_ID:
            if self._authed is not None and not self._authed.done():
                self._authed.set_result(frame)
            return
        if isinstance(ident, str) and ident.startswith(WHO):
            await self._presence_reply(ident.removeprefix(WHO), frame)
            return
        sub = self._subs.get(str(frame.get("channel") or ident))
        if sub is None:
            if kind == "error" and "channel" not in frame and ident is None:
                self._connection_error(frame)
            return  # a late frame of a board unsubscribed meanwhile
        if kind == "subscribed":  # this connection works: the next failure starts over
            self._failures = self._refusals = 0
        sub.accept(frame)
        if sub.state == "failed":
            self._subs.pop(sub.channel, None)
        elif kind == "subscribed" and sub.viewers is not None:
            await self._send(
                ws, {"type": "presence", "channel": sub.channel, "id": WHO + sub.channel}
            )

    async def _presence_reply(self, channel: str, frame: dict[str, Any]) -> None:
        asked = self._asks.pop(channel, None)
        if asked is not None and not asked.done():
            if frame.get("type") == "error":
                asked.set_exception(raised_for(str(frame.get("code")), str(frame.get("message"))))
            else:
                asked.set_result(frame)
        elif (sub := self._subs.get(channel)) is not None and frame.get("type") == "presence":
            sub.resumed_viewers(dict(frame.get("viewers") or {}))

    def _connection_error(self, frame: dict[str, Any]) -> None:
        """An `error` that belongs to no subscription: at connect, or a frame gone wrong."""
        code, message = str(frame.get("code")), str(frame.get("message"))
        if code == "unauthorized":
            return  # close 4101 follows: handled with the close
        if code in RETRIED_ERRORS:
            raise Reconnect(f"{code}: {message}")
        raise raised_for(code, message)

    def _disconnected(self) -> None:
        self._ws = None
        for sub in self._subs.values():
            sub.disconnected()
        for asked in [*self._asks.values(), self._authed]:
            if asked is not None and not asked.done():
                asked.set_exception(ConnectionFailed("the connection was lost"))
        self._asks.clear()

    async def _refresh(self, ws: ClientConnection) -> None:
        """Replace the credential before it expires, in band, for as long as `ws` lives.
        A failed refresh is tried again shortly until it is too late; then the expiry's
        4101 close makes `_attempt` reconnect with a fresh token."""
        expires = expiry(self.token)
        failed = 0
        with contextlib.suppress(ConnectionClosed):
            while expires is not None:
                left = expires - time.time()
                await asyncio.sleep(
                    min(1.0, left / 2) if failed else refresh_delay(expires, self.refresh_margin)
                )
                try:
                    renewed = await self._reauth(ws)
                except RefreshFailed as exc:
                    failed += 1
                    log.info("%s: token refresh failed: %s", self._where, exc)
                    if failed > AUTH_REFUSALS or expires - time.time() <= 0.25:
                        return
                    continue
                expires, failed = renewed, 0

    async def _reauth(self, ws: ClientConnection) -> float | None:
        """Send a fresh token in an `auth` frame; when the new one expires."""
        assert self._get_token is not None
        try:
            token = await fresh_token(self._get_token)
        except TokenUnavailable as exc:
            raise RefreshFailed(str(exc)) from exc
        self._authed = asyncio.get_running_loop().create_future()
        await self._send(ws, {"type": "auth", "token": token, "id": AUTH_ID})
        try:
            reply = await within(self._authed, self.timeout, "no answer to auth")
        except ConnectionFailed as exc:
            raise RefreshFailed(str(exc)) from exc
        if reply.get("type") != "authed":
            raise RefreshFailed(f"refused: {reply.get('message')}")
        self.token, self._refusals = token, 0
        log.debug("%s: credential refreshed in band", self._where)
        return parse_expires_at(reply.get("expires_at"))

    async def _send_subscribe(self, ws: ClientConnection, sub: Subscription) -> None:
        frame: dict[str, Any] = {"type": "subscribe", "channel": sub.channel, "id": sub.channel}
        if sub.seq is not None:
            frame["since"] = sub.seq
        with contextlib.suppress(ConnectionClosed):  # the next connection subscribes it
            await self._send(ws, frame)

    async def _send(self, ws: ClientConnection, frame: dict[str, Any]) -> None:
        await ws.send(json.dumps(frame, separators=(",", ":")))

    def _report(self, change: StateChange) -> None:
        self.state = change.state
        for queue in self._watchers:
            queue.put_nowait(change)
        if self._on_state is not None:
            try:
                self._on_state(change)
            except Exception:  # the caller's callback must not take the connection down
                log.exception("on_state callback failed")


async def within(step: Awaitable[T], seconds: float, what: str) -> T:
    """`step`'s result, or `ConnectionFailed` after `seconds` (not `asyncio.wait_for`:
    its timeout is not the builtin `TimeoutError` on Python 3.10)."""
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        raise ConnectionFailed(f"{what} within {seconds:g} s")
    return task.result()


async def watch_boards(
    live: Live, boards: Sequence[str], since: Mapping[str, int]
) -> AsyncGenerator[Frame, None]:
    """Every board's frames on one connection, in one iterator, in arrival order; raises
    the first failure of any board (or of the connection)."""
    sink: asyncio.Queue[Item] = asyncio.Queue()
    async with live:
        for board in boards:
            await live.add(board, since.get(board), sink)
        ended = 0
        while ended < len(boards):
            item = await sink.get()
            if item is None:
                ended += 1
            elif isinstance(item, SwitchboardError):
                raise item
            else:
                yield cast(Frame, item)
