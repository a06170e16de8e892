"""`Client`: the same API for plain synchronous code.

It owns an `AsyncClient` and a private event loop on a daemon thread, and each
method runs its async twin there and waits for the result: one implementation
of requests, retries and `watch`, whatever the caller's style. It also works
from code that already runs an event loop (a notebook), since it never uses
the caller's.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from switchboard_client.aio import DEFAULT_TIMEOUT, AsyncClient
from switchboard_client.retry import RetryPolicy
from switchboard_client.states import StateChange
from switchboard_client.sync_live import SyncLive
from switchboard_client.tokens import REFRESH_MARGIN, TokenSource

P = ParamSpec("P")
T = TypeVar("T")
Self = TypeVar("Self", bound="Client")  # `typing.Self` is Python 3.11+


def _blocking(
    method: Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Client, P], T]:
    """`AsyncClient.method`, run on the client's loop: same signature, same docstring."""

    @functools.wraps(method)
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._run(method(self._async, *args, **kwargs))

    return call


def _iterating(
    method: Callable[Concatenate[AsyncClient, P], AsyncGenerator[T, None]],
) -> Callable[Concatenate[Client, P], Generator[T, None, None]]:
    """An async generator of `AsyncClient`, as a plain generator driven on the client's
    loop (`close()` it, or leave its `for` loop, to end it)."""

    @functools.wraps(method)
    def call(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> Generator[T, None, None]:
        return self._iterate(method(self._async, *args, **kwargs))

    return call


class Client:
    """A Switchboard server's API for synchronous code: `with Client(url, token=…) as sb:`.
    Every method is `AsyncClient`'s, blocking; `watch` and the `iter_` ones are plain
    iterators."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        """The arguments are `AsyncClient`'s."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="switchboard-client", daemon=True
        )
        self._thread.start()
        self._async = AsyncClient(base_url, token=token, timeout=timeout, retry=retry)

    def __enter__(self: Self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections and stop the loop thread (calling it again does nothing)."""
        if self._loop.is_closed():
            return
        try:
            self._run(self._async.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    @property
    def base_url(self) -> str:
        return self._async.base_url

    list_boards = _blocking(AsyncClient.list_boards)
    iter_boards = _iterating(AsyncClient.iter_boards)
    create_board = _blocking(AsyncClient.create_board)
    get_board = _blocking(AsyncClient.get_board)
    update_board = _blocking(AsyncClient.update_board)
    delete_board = _blocking(AsyncClient.delete_board)
    get_widget = _blocking(AsyncClient.get_widget)
    put_widget = _blocking(AsyncClient.put_widget)
    delete_widget = _blocking(AsyncClient.delete_widget)
    set = _blocking(AsyncClient.set)
    update = _blocking(AsyncClient.update)
    append_points = _blocking(AsyncClient.append_points)
    list_events = _blocking(AsyncClient.list_events)
    iter_events = _iterating(AsyncClient.iter_events)
    events = _blocking(AsyncClient.events)
    mint_token = _blocking(AsyncClient.mint_token)
    create_key = _blocking(AsyncClient.create_key)
    list_keys = _blocking(AsyncClient.list_keys)
    revoke_key = _blocking(AsyncClient.revoke_key)
    watch = _iterating(AsyncClient.watch)

    def connect(
        self,
        *,
        get_token: TokenSource | None = None,
        on_state: Callable[[StateChange], None] | None = None,
        refresh_margin: float = REFRESH_MARGIN,
    ) -> SyncLive:
        """`AsyncClient.connect`, for plain code: `with sb.connect() as live:`, then
        `for frame in live.subscribe(board):`. `get_token` and `on_state` are called on
        the client's own thread (keep them quick)."""
        return SyncLive(
            self,
            self._async.connect(
                get_token=get_token, on_state=on_state, refresh_margin=refresh_margin
            ),
        )

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on the loop thread and wait; if the wait is interrupted (Ctrl-C),
        cancel it there too, so nothing keeps running behind the caller's back."""
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def _iterate(self, frames: AsyncGenerator[T, None]) -> Generator[T, None, None]:
        """Pull `frames` one item at a time; closing this iterator (or leaving its `for`
        loop, or an error) closes the async generator, and with it its connection."""
        try:
            while True:
                try:
                    yield self._run(anext(frames))
                except StopAsyncIteration:
                    return
        finally:
            self._run(frames.aclose())
