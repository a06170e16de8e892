"""`GET /metrics`: every worker's counts whichever worker answers, HTTP requests by route
template, the delivery lag, and output that `promtool check metrics` accepts.

The multi-worker tests run `switchboard serve --workers 2` on PostgreSQL and Redis and
find out from `/proc` which worker holds each client connection (Linux), so they can
put writes, subscribers and scrapes on both workers on purpose, not by the kernel's luck.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from switchboard.metrics import METRICS
from tests.conftest import production_env
from tests.helpers import (
    ADMIN_KEY,
    AUTH,
    LiveServer,
    ServerProcess,
    WsClient,
    eventually,
    spawn_server,
    sse,
)

WORKERS = 2
SCRAPES = 8
EVENTS = 61


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def promtool_check(text: str) -> None:
    """`promtool check metrics` (Debian's `prometheus` package; `.ci/run` installs it)."""
    checked = subprocess.run(
        ["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    report = (checked.stdout + checked.stderr).decode()
    assert checked.returncode == 0, report
    assert report.strip() == "", report  # lint findings too, not only parse errors


def metrics_directories(parent: Path) -> list[Path]:
    return list(parent.glob("switchboard-metrics-*"))


# -- which worker holds a connection (Linux /proc) --------------------------------------


def worker_pids(server: ServerProcess) -> set[int]:
    """The worker processes uvicorn spawned (not its multiprocessing resource tracker)."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    }


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def _accepted_inode(server_port: int, client_port: int) -> int | None:
    """The inode of the server's end of the TCP connection from `client_port`."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16)) == (
            server_port,
            client_port,
        ):
            return int(fields[9])
    return None


async def worker_of(server: ServerProcess, client_port: int, workers: set[int]) -> int:
    """The worker that accepted the connection from `client_port` (it may not have yet)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        inode = _accepted_inode(server.port, client_port)
        if inode:
            for pid in workers:
                if inode in _socket_inodes(pid):
                    return pid
        await asyncio.sleep(0.02)
    raise AssertionError(f"no worker holds the connection from port {client_port}")


class Clients:
    """Keep-alive HTTP clients, each holding one connection to a known worker."""

    def __init__(self, server: ServerProcess, workers: set[int]) -> None:
        self.server = server
        self.workers = workers
        self.by_worker: dict[int, list[httpx.AsyncClient]] = {pid: [] for pid in workers}

    async def spread(self, each: int) -> None:
        """Open clients until every worker holds at least `each` of them."""
        for _ in range(200):
            if all(len(held) >= each for held in self.by_worker.values()):
                return
            client = httpx.AsyncClient(base_url=self.server.base_url, headers=AUTH, timeout=10)
            response = await client.get("/healthz")
            assert response.status_code == 200
            _, port = response.extensions["network_stream"].get_extra_info("client_addr")
            pid = await worker_of(self.server, port, self.workers)
            self.by_worker[pid].append(client)
        raise AssertionError(f"connections did not reach every worker: {self.by_worker}")

    def round_robin(self) -> list[tuple[int, httpx.AsyncClient]]:
        """One client of each worker in turn, every client once."""
        rounds = zip(*self.by_worker.values(), strict=False)
        return [
            (pid, client)
            for clients in rounds
            for pid, client in zip(self.by_worker, clients, strict=True)
        ]

    async def close(self) -> None:
        for held in self.by_worker.values():
            for client in held:
                await client.aclose()


async def watchers_on_each_worker(
    server: ServerProcess, workers: set[int], slug: str, each: int
) -> dict[int, list[WsClient]]:
    """Subscribed WebSocket clients, at least `each` held by every worker."""
    held: dict[int, list[WsClient]] = {pid: [] for pid in workers}
    for _ in range(200):
        if all(len(clients) >= each for clients in held.values()):
            return held
        ws = WsClient(await connect(server.ws_url, additional_headers=AUTH))
        await ws.subscribe(slug)
        assert (await ws.recv())["type"] == "snapshot"
        pid = await worker_of(server, ws.connection.local_address[1], workers)
        held[pid].append(ws)
    raise AssertionError(f"WebSockets did not reach every worker: {held}")


@pytest.fixture
async def serve_two(
    pg_url: str, prefix: str, tmp_path: Path
) -> AsyncIterator[tuple[ServerProcess, set[int]]]:
    """`switchboard serve --workers 2` with its temporary files under `tmp_path`."""
    env = production_env(pg_url, prefix, TMPDIR=str(tmp_path), SWITCHBOARD_LOG_LEVEL="info")
    server = await spawn_server(env, workers=WORKERS, timeout=60, log=tmp_path / "serve.log")
    try:
        workers = worker_pids(server)
        assert len(workers) == WORKERS
        yield server, workers
    finally:
        server.stop()


async def test_every_scrape_counts_every_worker(
    serve_two: tuple[ServerProcess, set[int]], slug: str, tmp_path: Path
) -> None:
    """The issue's case: 61 events written through both workers, then scrapes answered by
    both workers in turn. Each scrape has the same totals: all of them, not one worker's."""
    server, workers = serve_two
    (directory,) = metrics_directories(tmp_path)  # this start's own
    clients = Clients(server, workers)
    try:
        await clients.spread(each=SCRAPES // WORKERS)
        writers = clients.round_robin()
        _, first = writers[0]
        assert (await first.post("/api/boards", json={"slug": slug})).status_code == 201
        watchers = await watchers_on_each_worker(server, workers, slug, each=2)
        opened = sum(len(held) for held in watchers.values())

        written_by: dict[int, int] = dict.fromkeys(workers, 0)
        for i in range(EVENTS):
            pid, client = writers[i % len(writers)]
            if i == 0:
                response = await client.put(
                    f"/api/boards/{slug}/widgets/w", json={"kind": "number", "value": 0}
                )
                assert response.status_code == 201, response.text
            else:
                response = await client.patch(f"/api/boards/{slug}/widgets/w", json={"value": i})
                assert response.status_code == 200, response.text
            written_by[pid] += 1
        assert all(written_by.values()), written_by  # both workers published some
        for held in watchers.values():
            for ws in held:
                assert [e["seq"] for e in await ws.events(EVENTS, timeout=30)] == list(
                    range(1, EVENTS + 1)
                )

        scraped_by: list[int] = []
        texts: list[str] = []
        for pid, client in clients.round_robin():
            response = await client.get("/metrics")
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain")
            scraped_by.append(pid)
            texts.append(response.text)
        assert len(texts) >= SCRAPES
        assert set(scraped_by) == workers  # every worker answered some of them

        def totals(text: str) -> tuple[float, ...]:
            return tuple(
                value(text, name)
                for name in (
                    "switchboard_events_published_total",
                    "switchboard_events_forwarded_total",
                    "switchboard_events_delivered_total",
                    "switchboard_delivery_lag_seconds_count",
                    "switchboard_connections",
                    "switchboard_subscriptions",
                    "switchboard_channels",
                )
            )

        assert {totals(text) for text in texts} == {
            (
                EVENTS,  # each published once, by whichever worker took the write
                EVENTS * WORKERS,  # each forwarded once by each worker holding the channel
                EVENTS * opened,  # each handed to every subscriber
                EVENTS * WORKERS,  # the lag: once per event per worker, not per subscriber
                opened,  # the connections of both workers, summed
                opened,
                WORKERS,  # the board's channel, held on each worker
            )
        }
        last = texts[-1]
        pids = {
            labels
            for (name, labels), _ in samples(last).items()
            if name == "switchboard_worker_pid"
        }
        assert pids == {frozenset({("pid", str(pid))}) for pid in workers}
        assert value(last, "switchboard_delivery_lag_seconds_sum") < EVENTS * WORKERS * 5.0

        # HTTP requests by route template, summed over workers; never a raw slug.
        template = "/api/boards/{slug}/widgets/{key}"
        assert value(
            last, "switchboard_http_requests_total", method="PATCH", route=template, status="200"
        ) == (EVENTS - 1)
        assert value(
            last, "switchboard_http_request_duration_seconds_count", method="PATCH", route=template
        ) == (EVENTS - 1)
        assert (
            value(
                last,
                "switchboard_http_requests_total",
                method="GET",
                route="/metrics",
                status="200",
            )
            >= len(texts) - 1
        )
        assert value(last, "switchboard_http_requests_in_flight") >= 1  # this scrape
        assert slug not in last
        assert 'route="/ws"' not in last  # WebSockets are connections, not requests
        assert "process_cpu_seconds_total" not in last  # one worker's CPU would mislead
        promtool_check(last)

        files = set(os.listdir(directory))
        assert {f"counter_{pid}.db" for pid in workers} <= files  # the workers', no other
        assert all(name.endswith(tuple(f"_{pid}.db" for pid in workers)) for name in files)
        for held in watchers.values():
            for ws in held:
                await ws.close()
    finally:
        await clients.close()
    server.stop()
    assert metrics_directories(tmp_path) == []  # removed when the server stopped


async def test_a_dead_workers_connections_leave_the_sum(
    serve_two: tuple[ServerProcess, set[int]], slug: str
) -> None:
    """A worker killed outright (no cleanup of its own): uvicorn starts another, and the
    next scrape no longer counts the dead one's connections; what it counted stays."""
    server, workers = serve_two
    async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=10) as http:
        assert (await http.post("/api/boards", json={"slug": slug})).status_code == 201
        watchers = await watchers_on_each_worker(server, workers, slug, each=2)
        for i in range(5):
            response = await http.put(
                f"/api/boards/{slug}/widgets/w{i}", json={"kind": "number", "value": i}
            )
            assert response.status_code == 201
        victim = next(iter(workers))
        survivors = len(next(held for pid, held in watchers.items() if pid != victim))
        before = (await http.get("/metrics")).text
        assert value(before, "switchboard_connections") == sum(map(len, watchers.values()))

        os.kill(victim, signal.SIGKILL)

        deadline = time.monotonic() + 60  # uvicorn reaps, the worker's stand-in imports
        while True:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as fresh:
                text = (await fresh.get("/metrics")).text  # a new connection: a live worker
            pids = {
                dict(labels)["pid"]
                for (name, labels), _ in samples(text).items()
                if name == "switchboard_worker_pid"
            }
            if str(victim) not in pids and len(pids) == WORKERS:
                break  # reaped, swept, and replaced
            assert time.monotonic() < deadline, f"still counted: {pids}"
            await asyncio.sleep(0.2)
        assert value(text, "switchboard_connections") == survivors
        assert value(text, "switchboard_subscriptions") == survivors
        assert value(text, "switchboard_channels") == 1
        assert value(text, "switchboard_events_published_total") == 5
        puts = {"method": "PUT", "route": "/api/boards/{slug}/widgets/{key}", "status": "201"}
        assert value(text, "switchboard_http_requests_total", **puts) == 5
    for held in watchers.values():
        for ws in held:
            with contextlib.suppress(Exception):
                await ws.close()


# -- one process (in-process server): the same names, HTTP details -----------------------


def sample(name: str, **labels: str) -> float:
    return METRICS.registry.get_sample_value(name, labels) or 0.0


async def test_http_requests_are_labelled_by_route_template(
    production: LiveServer, slug: str
) -> None:
    """Routes by template (a 404 on a known route too), unknown paths as `unmatched`,
    requests answered before routing by the route they were for, SSE streams counted but
    kept out of the latency histogram and of the in-flight gauge, WebSockets not at all."""
    http = production.http
    requests = "switchboard_http_requests_total"
    board = "/api/boards/{slug}"
    stream = "/api/boards/{slug}/stream"
    watched = {  # what each request below adds to: (metric, labels)
        "found": (requests, {"method": "GET", "route": board, "status": "200"}),
        "missing": (requests, {"method": "GET", "route": board, "status": "404"}),
        "unmatched": (requests, {"method": "GET", "route": "unmatched", "status": "404"}),
        "too_large": (requests, {"method": "POST", "route": "/api/boards", "status": "413"}),
        "static": (requests, {"method": "GET", "route": "/static/{path}", "status": "404"}),
        "odd_method": (requests, {"method": "other", "route": board, "status": "405"}),
        "stream": (requests, {"method": "GET", "route": stream, "status": "200"}),
        "stream_duration": (
            "switchboard_http_request_duration_seconds_count",
            {"method": "GET", "route": stream},
        ),
    }

    def counts() -> dict[str, float]:
        return {key: sample(name, **labels) for key, (name, labels) in watched.items()}

    before = counts()
    await production.create_board(slug)
    assert (await http.get(f"/api/boards/{slug}")).status_code == 200
    assert (await http.get("/api/boards/no-such-board")).status_code == 404
    assert (await http.get(f"/no/such/{slug}")).status_code == 404
    too_large = await http.post("/api/boards", content=b"x" * (2 << 20))
    assert too_large.status_code == 413  # answered by the body limit, before routing
    assert (await http.get("/static/no-such-file.js")).status_code == 404
    assert (await http.request("PROPFIND", f"/api/boards/{slug}")).status_code == 405
    async with sse(http, f"/api/boards/{slug}/stream") as events:
        await events.next()
        assert sample("switchboard_http_requests_in_flight") == 0  # the stream is not
    ws = await production.ws()
    await ws.subscribe(slug)
    await ws.close()
    await eventually(lambda: counts()["stream"] == before["stream"] + 1)  # counted at its end
    assert counts() == {key: count + (key != "stream_duration") for key, count in before.items()}
    text = (await http.get("/metrics")).text
    assert slug not in text
    assert 'route="/ws"' not in text
    assert value(text, "switchboard_worker_pid") == os.getpid()  # one process: this one
    assert value(text, "process_cpu_seconds_total") > 0  # its own CPU, one process only
    promtool_check(text)


async def test_an_idempotent_replay_keeps_its_route(production: LiveServer, slug: str) -> None:
    """A replay is answered by the middleware before routing: still labelled by route."""
    await production.create_board(slug)
    path = f"/api/boards/{slug}/widgets/w"
    template = "/api/boards/{slug}/widgets/{key}"
    before = sample("switchboard_http_requests_total", method="PUT", route=template, status="201")
    headers = {"Idempotency-Key": f"k-{slug}", "Authorization": f"Bearer {ADMIN_KEY}"}
    for _ in range(2):
        response = await production.http.put(path, json={"kind": "number"}, headers=headers)
        assert response.status_code == 201
    after = sample("switchboard_http_requests_total", method="PUT", route=template, status="201")
    assert after == before + 2
