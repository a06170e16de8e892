"""The command line: keys, and the push/tail client against a real server."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.helpers import ADMIN_KEY, AUTH, spawn_server


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_keys_push_and_tail(tmp_path: Path) -> None:
    env = {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db"}
    created = _cli("keys", "create", "--role", "write", "--board", "ops", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sbk_")
    listed = _cli("keys", "list", env=env, cwd=tmp_path)
    assert "write\tops\tactive" in listed.stdout
    assert key.rsplit("_", 1)[1] not in listed.stdout

    server = await spawn_server(env, cwd=str(tmp_path))
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH) as http:
            await http.post("/api/boards", json={"slug": "ops"})
            await http.put("/api/boards/ops/widgets/cpu", json={"kind": "number", "value": 1})
        client_env = {**env, "SWITCHBOARD_URL": server.base_url, "SWITCHBOARD_TOKEN": key}
        tail = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "switchboard.cli", "tail", "ops",
            env={**os.environ, **client_env}, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert tail.stdout is not None
            snapshot = await asyncio.wait_for(tail.stdout.readline(), 20)
            assert b'"type":"snapshot"' in snapshot  # the first line: the board as it is
            assert b'"reset":false' in snapshot
            pushed = await asyncio.to_thread(
                _cli, "push", "ops", "cpu", "42", env=client_env, cwd=tmp_path
            )
            assert pushed.returncode == 0, pushed.stderr
            event = await asyncio.wait_for(tail.stdout.readline(), 20)
            assert b'"event":"widget.updated"' in event
            assert b'"value":42' in event
        finally:
            tail.kill()
            await tail.wait()

        denied = _cli("push", "other", "cpu", "1", env=client_env, cwd=tmp_path)
        assert denied.returncode == 1
        assert "not_found" in denied.stderr
        revoked = _cli("keys", "revoke", key.split("_")[1], env=env, cwd=tmp_path)
        assert revoked.returncode == 0
        assert ADMIN_KEY not in revoked.stdout + revoked.stderr
    finally:
        server.stop()


async def test_demo_fills_a_public_board(tmp_path: Path) -> None:
    """`switchboard demo` with no token makes its own key in the store and writes through REST."""
    env = {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db"}
    server = await spawn_server(env, cwd=str(tmp_path))
    try:
        demo_env = {**env, "SWITCHBOARD_URL": server.base_url}
        ran = await asyncio.to_thread(
            _cli, "demo", "--iterations", "13", "--interval", "0.01", env=demo_env, cwd=tmp_path
        )
        assert ran.returncode == 0, ran.stderr
        assert f"{server.base_url}/boards/demo" in ran.stdout
        async with httpx.AsyncClient(base_url=server.base_url) as anonymous:  # it is public
            board = (await anonymous.get("/api/boards/demo")).json()
        kinds = {w["kind"] for w in board["widgets"]}
        assert kinds == {"number", "gauge", "status", "series", "text"}
        assert board["seq"] >= 5 + 13 * 3 + 2 + 1  # widgets, 3 writes a tick, status, note
        latency = next(w for w in board["widgets"] if w["key"] == "latency")
        assert len(latency["value"]) == 13
    finally:
        server.stop()
