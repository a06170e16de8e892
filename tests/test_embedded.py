"""The embedded default: `switchboard serve` with no configuration at all."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.helpers import WsClient, spawn_server


def _bootstrap_key(stderr: Path) -> str:
    """The admin key the first start printed (the only place it ever appears)."""
    found = re.findall(r"sbk_[a-z0-9]+_[A-Za-z0-9_-]+", stderr.read_text())
    assert len(found) == 1, stderr.read_text()
    return str(found[0])


async def test_serve_with_no_configuration(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    first_log = tmp_path / "first.log"
    server = await spawn_server(env, cwd=str(tmp_path), admin_key=None, log=first_log)
    auth = {"Authorization": f"Bearer {_bootstrap_key(first_log)}"}
    try:
        async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
            refused = await anonymous.post("/api/boards", json={"slug": "ops"})
            assert refused.status_code == 401
        async with httpx.AsyncClient(base_url=server.base_url, headers=auth) as http:
            ready = (await http.get("/readyz")).json()
            assert ready == {"status": "ok", "database": "ok", "broker": "ok"}
            assert (await http.post("/api/boards", json={"slug": "ops"})).status_code == 201
            ws = WsClient(await connect(server.ws_url, additional_headers=auth))
            await ws.subscribe("ops")
            assert (await ws.recv())["type"] == "snapshot"
            await http.put("/api/boards/ops/widgets/up", json={"kind": "status", "value": "ok"})
            (event,) = await ws.events(1)
            assert event["data"]["value"] == "ok"
            await ws.close()
        assert (tmp_path / "switchboard.db").exists()
    finally:
        server.stop()
    # A second start reuses the store, its data and its key, and prints no new key.
    second_log = tmp_path / "second.log"
    server = await spawn_server(env, cwd=str(tmp_path), admin_key=None, log=second_log)
    try:
        assert "sbk_" not in second_log.read_text()
        async with httpx.AsyncClient(base_url=server.base_url, headers=auth) as http:
            board = (await http.get("/api/boards/ops")).json()
            assert board["seq"] == 1
            assert board["widgets"][0]["value"] == "ok"
    finally:
        server.stop()


async def test_several_workers_refused_without_postgres_and_redis(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    result = subprocess.run(
        [sys.executable, "-m", "switchboard.cli", "serve", "--workers", "2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "several workers need PostgreSQL and Redis" in result.stderr
