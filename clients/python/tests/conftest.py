"""The server the client's tests talk to, and a client for its admin key.

These tests need nothing but the client and pytest: they run against the server that
SWITCHBOARD_TEST_URL names (with SWITCHBOARD_TEST_ADMIN_KEY, an admin key of that server),
and otherwise start a `switchboard serve` of their own (embedded SQLite in a temporary
directory), from the `switchboard` command beside this Python or on PATH. Every test
makes its own boards and keys, so a shared server may hold others.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from switchboard_client import AsyncClient

START_TIMEOUT = 60.0
"""Seconds for a server of the tests' own to answer /readyz (it migrates its database)."""


@dataclass(frozen=True)
class Target:
    url: str
    admin_key: str


@pytest.fixture(scope="session")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    url = os.environ.get("SWITCHBOARD_TEST_URL")
    if url:
        key = os.environ.get("SWITCHBOARD_TEST_ADMIN_KEY")
        if not key:
            pytest.fail("SWITCHBOARD_TEST_URL is set: SWITCHBOARD_TEST_ADMIN_KEY must be too")
        yield Target(url.rstrip("/"), key)
    else:
        yield from own_server(tmp_path_factory.mktemp("server"))


def switchboard_command() -> str:
    """The `switchboard` executable of this environment (a virtualenv's), else PATH's."""
    beside = Path(sys.prefix) / "bin" / "switchboard"
    found = str(beside) if beside.exists() else shutil.which("switchboard")
    if found is None:
        pytest.fail(
            "no `switchboard` command: install switchboard-live or set SWITCHBOARD_TEST_URL"
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def own_server(directory: Path) -> Iterator[Target]:
    """`switchboard serve` on a free port with a fresh database; stopped afterwards."""
    key = f"client-tests-{secrets.token_hex(16)}"
    env = {name: value for name, value in os.environ.items() if not name.startswith("SWITCHBOARD_")}
    env |= {
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{directory}/switchboard.db",
        "SWITCHBOARD_ADMIN_KEY": key,
        "SWITCHBOARD_WRITE_RATE_LIMIT": "0",
    }
    port = free_port()
    log = directory / "serve.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [switchboard_command(), "serve", "--port", str(port)],
            env=env,
            cwd=directory,
            stdout=output,
            stderr=output,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, log)
        yield Target(url, key)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"switchboard serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(
        f"switchboard serve did not answer /readyz in {START_TIMEOUT} s:\n{log.read_text()}"
    )


@pytest.fixture
async def admin(target: Target) -> AsyncIterator[AsyncClient]:
    """A client with the server's admin key."""
    async with AsyncClient(target.url, token=target.admin_key) as client:
        yield client


@pytest.fixture
def slug() -> str:
    """A board slug no other test (nor an earlier run on a shared server) uses."""
    return f"ct-{uuid.uuid4().hex[:12]}"
