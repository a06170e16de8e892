"""The server under test: Switchboard in production mode (PostgreSQL + Redis), run as its
own process group on the run's own database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.env import KEY, PG_ADMIN, REDIS
from bench.measure import children, cpu_seconds
from switchboard.store import migrate


async def database(name: str, create: bool) -> str:
    """Create (and migrate) or drop the run's database; its URL."""
    admin = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        if create:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    if create:
        await migrate.upgrade(url)
    return url


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def workers(self) -> list[int]:
        """The worker processes (uvicorn's supervisor also runs multiprocessing's
        resource tracker: not a worker)."""
        found = [
            pid
            for pid in children(self.process.pid)
            if b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        return found or [self.process.pid]

    def cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.workers)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(db_url: str, prefix: str, workers: int, broker: str = REDIS) -> Server:
    """`workers` uvicorn workers on the run's database, with `broker`
    (`SWITCHBOARD_BROKER_URL`: the single Redis unless a phase names a cluster)."""
    port = free_port()
    env = {
        **os.environ,
        "SWITCHBOARD_DATABASE_URL": db_url,
        "SWITCHBOARD_BROKER_URL": broker,
        "SWITCHBOARD_BROKER_PREFIX": prefix,
        "SWITCHBOARD_ADMIN_KEY": KEY,
        "SWITCHBOARD_WRITE_RATE_LIMIT": "0",
        "SWITCHBOARD_LOG_LEVEL": "warning",
        "SWITCHBOARD_MAX_CONNECTIONS_PER_CREDENTIAL": "100000",
        "SWITCHBOARD_DB_POOL_SIZE": "20",
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "switchboard.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        start_new_session=True,
        # BENCH_SERVER_LOG=path keeps the server's log (warnings and up) for a failed run.
        stderr=open(os.environ["BENCH_SERVER_LOG"], "ab")  # noqa: SIM115
        if os.environ.get("BENCH_SERVER_LOG")
        else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    server = Server(process, port)
    # Two workers took 25-36 s to become ready on the 2-core machine while other test
    # suites ran on it: 30 s failed the smoke run 2 times in 5.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            ready = httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200
            if ready and len(server.workers) >= workers:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("server did not start")
