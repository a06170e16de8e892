"""A real server process shared by the fuzz tests (they drive it with sync clients)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import AUTH, ServerProcess, spawn_server


def seed(server: ServerProcess) -> None:
    """The boards and widgets the fuzzer hits (`ops` and `cpu` are the document's examples),
    put back as they were: a fuzzed DELETE or PATCH may have changed them."""
    with httpx.Client(base_url=server.base_url, headers=AUTH) as http:
        for slug, public in (("ops", True), ("private", False), ("a", False)):
            http.post("/api/boards", json={"slug": slug, "public": public})
            http.patch(f"/api/boards/{slug}", json={"public": public})
            for key in ("w", "cpu"):
                http.put(f"/api/boards/{slug}/widgets/{key}", json={"kind": "number", "value": 1})
            http.put(f"/api/boards/{slug}/widgets/s", json={"kind": "series"})


@pytest.fixture(scope="package")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server process with a few boards and widgets for the fuzzer to hit."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    env = {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/sb.db"}
    server = asyncio.run(spawn_server(env, cwd=str(tmp)))
    seed(server)
    yield server
    server.stop()


@pytest.fixture
def seeded_server(fuzz_server: ServerProcess) -> ServerProcess:
    """The fuzz server with its boards and widgets back, for each operation's run."""
    seed(fuzz_server)
    return fuzz_server
