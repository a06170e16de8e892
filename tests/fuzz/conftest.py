"""A real server process shared by the fuzz tests (they drive it with sync clients)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import AUTH, ServerProcess, spawn_server


@pytest.fixture(scope="package")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real server process with a few boards and widgets for the fuzzer to hit."""
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    env = {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/sb.db"}
    server = asyncio.run(spawn_server(env, cwd=str(tmp)))
    with httpx.Client(base_url=server.base_url, headers=AUTH) as http:
        for slug, public in (("ops", True), ("private", False), ("a", False)):
            http.post("/api/boards", json={"slug": slug, "public": public})
            http.put(f"/api/boards/{slug}/widgets/w", json={"kind": "number", "value": 1})
            http.put(f"/api/boards/{slug}/widgets/s", json={"kind": "series"})
    yield server
    server.stop()
