"""The client across real faults: a watch resumes across a killed worker with no gap and
no duplicate; a write whose answer was lost is retried across a worker restart and
applied once."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from switchboard_client import AsyncClient, Frame, RetryPolicy
from tests.client.conftest import embedded_env
from tests.conftest import production_env
from tests.helpers import ADMIN_KEY, ServerProcess, eventually, free_port, spawn_server

PATIENT = RetryPolicy(attempts=100, backoff=0.1, max_backoff=0.5, deadline=90)
"""Retries short enough for a test, and enough of them to outlast a worker's restart."""


class AnswerDropper:
    """A TCP proxy on loopback that passes requests through, except the first answer: it
    holds it (`answered` is set) until the test sets `release`, then hangs up on the client
    instead of forwarding it. The server acted; the client never hears about it. While
    nothing listens behind it, it accepts and hangs up at once (a restarting worker behind
    a load balancer)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.answered = asyncio.Event()
        self.release = asyncio.Event()
        self._holding = False
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await self._server.wait_closed()

    async def _accept(self, client_in: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        try:
            server_in, server = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client.close()
            return
        for task in (self._copy(client_in, server), self._answer(server_in, client, server)):
            self._tasks.add(asyncio.create_task(task))

    async def _copy(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        sink.close()

    async def _answer(
        self,
        source: asyncio.StreamReader,
        client: asyncio.StreamWriter,
        server: asyncio.StreamWriter,
    ) -> None:
        if not self._holding:
            self._holding = True  # only the first connection's answer is held
            await source.read(1)  # the server has answered: the write happened
            self.answered.set()
            await self.release.wait()
            client.close()
            server.close()
            return
        await self._copy(source, client)


@pytest.mark.parametrize("backend", ["embedded", "production"])
async def test_a_write_retried_across_a_worker_restart_is_applied_once(
    backend: str, tmp_path: Path, pg_url: str, prefix: str, slug: str
) -> None:
    env = embedded_env(tmp_path) if backend == "embedded" else production_env(pg_url, prefix)
    port = free_port()
    worker = await spawn_server(env, port=port, cwd=str(tmp_path))
    proxy = AnswerDropper(port)
    await proxy.start()
    try:
        async with AsyncClient(worker.base_url, token=ADMIN_KEY) as direct:
            await direct.create_board(slug)
            await direct.put_widget(slug, "n", kind="number", value=0)  # seq 1, version 1

        async with AsyncClient(proxy.base_url, token=ADMIN_KEY, retry=PATIENT) as flaky:
            write = asyncio.create_task(flaky.set(slug, "n", 42))
            await asyncio.wait_for(proxy.answered.wait(), 20)
            await asyncio.to_thread(worker.stop)  # the worker restarts...
            proxy.release.set()  # ...and the answer it gave is lost on the way
            await asyncio.sleep(1)
            assert not write.done()  # ...while the client keeps retrying the same key
            worker = await spawn_server(env, port=port, cwd=str(tmp_path))
            widget = await asyncio.wait_for(write, 60)
        assert (widget["value"], widget["version"]) == (42, 2)  # the first attempt's answer

        async with AsyncClient(worker.base_url, token=ADMIN_KEY) as direct:
            board = await direct.get_board(slug)
            history = await direct.events(slug)
        assert board["seq"] == 2
        assert board["widgets"][0]["version"] == 2
        assert [(e["event"], e["data"].get("value")) for e in history] == [
            ("widget.created", 0),
            ("widget.updated", 42),
        ]
    finally:
        await proxy.close()
        worker.stop()


async def test_watch_resumes_across_a_killed_worker_without_gap_or_duplicate(
    pg_url: str, prefix: str, slug: str
) -> None:
    env = production_env(pg_url, prefix)
    port = free_port()
    watched: ServerProcess = await spawn_server(env, port=port)
    writer = await spawn_server(env)
    try:
        async with (
            AsyncClient(writer.base_url, token=ADMIN_KEY) as w,
            AsyncClient(watched.base_url, token=ADMIN_KEY, retry=PATIENT) as r,
        ):
            await w.create_board(slug)
            await w.put_widget(slug, "n", kind="number", value=0)  # seq 1
            got: list[Frame] = []

            async def collect() -> None:
                async for frame in r.watch(slug):
                    got.append(frame)

            watching = asyncio.create_task(collect())
            await eventually(lambda: len(got) == 1, 20)
            for value in (1, 2, 3):  # seq 2-4, live
                await w.set(slug, "n", value)
            await eventually(lambda: got[-1]["seq"] == 4, 20)

            watched.kill()  # SIGKILL: no close frame, the client sees the connection drop
            await asyncio.to_thread(watched.process.wait, 10)
            for value in (4, 5, 6):  # seq 5-7, while the watcher has no connection
                await w.set(slug, "n", value)
            watched = await spawn_server(env, port=port)
            for value in (7, 8):  # seq 8-9, around the reconnect
                await w.set(slug, "n", value)
            await eventually(lambda: got[-1]["seq"] == 9, 30)
            await asyncio.sleep(0.5)  # a duplicate would arrive now
            watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watching
        assert [f["type"] for f in got] == ["snapshot"] + ["event"] * 8
        assert [f["seq"] for f in got] == list(range(1, 10))
        assert [f["data"]["value"] for f in got[1:]] == [1, 2, 3, 4, 5, 6, 7, 8]
    finally:
        watched.stop()
        writer.stop()
