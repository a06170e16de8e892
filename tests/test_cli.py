"""The command line: keys, and the push/tail/demo client against real servers."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.helpers import ADMIN_KEY, AUTH, free_port, spawn_server

SERVER_PACKAGES = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "asyncpg", "pydantic_settings")


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "switchboard.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=90,
    )


def _one_line_error(ran: subprocess.CompletedProcess[str]) -> str:
    """The command's one error line on stderr (never a traceback); besides it, stderr may
    only say which database a store command acts on."""
    lines = [line for line in ran.stderr.strip().splitlines() if not line.startswith("database: ")]
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith("error: "), ran.stderr
    return lines[0]


def _sqlite(path: Path) -> dict[str, str]:
    return {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{path}"}


@pytest.mark.parametrize("command", ["push", "tail", "demo"])
def test_client_commands_load_no_server_package(command: str, tmp_path: Path) -> None:
    """`switchboard push --help` (and tail, demo) import the client, not the server."""
    script = (
        "import sys\n"
        "from switchboard.cli import app\n"
        f"try:\n    app([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
        f"print('LOADED', sorted(m for m in {SERVER_PACKAGES!r} if m in sys.modules))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert ran.returncode == 0, ran.stderr
    assert "Usage: " in ran.stdout  # the help was printed, so the command was built
    assert "LOADED []" in ran.stdout


async def test_keys_push_and_tail(tmp_path: Path) -> None:
    env = _sqlite(tmp_path / "sb.db")
    created = _cli("keys", "create", "--role", "write", "--board", "ops", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("sbk_")
    assert created.stdout == f"{key}\n"  # stdout is the secret alone
    assert f"database: sqlite+aiosqlite:///{tmp_path}/sb.db" in created.stderr
    listed = _cli("keys", "list", env=env, cwd=tmp_path)
    assert "write\tops\tactive" in listed.stdout
    assert key.rsplit("_", 1)[1] not in listed.stdout
    assert "database: sqlite" in listed.stderr

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
            schemeless = {**client_env, "SWITCHBOARD_URL": f"127.0.0.1:{server.port}"}
            pushed = await asyncio.to_thread(
                _cli, "push", "ops", "cpu", "42", env=schemeless, cwd=tmp_path
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
        assert "not_found" in _one_line_error(denied)
        revoked = _cli("keys", "revoke", key.split("_")[1], env=env, cwd=tmp_path)
        assert revoked.returncode == 0
        assert ADMIN_KEY not in revoked.stdout + revoked.stderr
    finally:
        server.stop()


def test_push_refuses_a_value_that_starts_like_json_but_does_not_parse(tmp_path: Path) -> None:
    """Refused before any request (no server here): one line, status 2."""
    ran = _cli("push", "ops", "cpu", '{"a":', env={"SWITCHBOARD_URL": "127.0.0.1:9"}, cwd=tmp_path)
    assert ran.returncode == 2
    line = _one_line_error(ran)
    assert "is not valid JSON" in line
    assert """'"{\\"a\\":"'""" in line  # how to send it as text instead


async def test_push_errors_are_one_line(tmp_path: Path) -> None:
    """A refused key, a missing key, a key without the role, a bare word: one line each."""
    env = _sqlite(tmp_path / "sb.db")
    read_key = _cli("keys", "create", "--role", "read", env=env, cwd=tmp_path).stdout.strip()
    server = await spawn_server(env, cwd=str(tmp_path))
    try:
        async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH) as http:
            await http.post("/api/boards", json={"slug": "ops"})
            await http.put("/api/boards/ops/widgets/api", json={"kind": "status", "value": "ok"})
        at = {"SWITCHBOARD_URL": server.base_url}
        cases = {
            "sbk_nothere_0123456789abcdef": "refused the key",
            "": "wants a key: set SWITCHBOARD_TOKEN",
            read_key: "the key may not do this",
        }
        for token, says in cases.items():
            ran = await asyncio.to_thread(
                _cli, "push", "ops", "api", "down", env={**at, "SWITCHBOARD_TOKEN": token},
                cwd=tmp_path,
            )  # fmt: skip
            assert ran.returncode == 1
            line = _one_line_error(ran)
            assert says in line
            assert server.base_url in line
        word = await asyncio.to_thread(
            _cli, "push", "ops", "api", "down", env={**at, "SWITCHBOARD_TOKEN": ADMIN_KEY},
            cwd=tmp_path,
        )  # fmt: skip
        assert word.returncode == 0, word.stderr
        assert '"value":"down"' in word.stdout  # a bare word is a string
    finally:
        server.stop()


def test_push_to_a_server_that_is_down_reports_each_retry_then_says_so(tmp_path: Path) -> None:
    port = free_port()
    ran = _cli(
        "push", "ops", "cpu", "1", env={"SWITCHBOARD_URL": f"127.0.0.1:{port}"}, cwd=tmp_path
    )
    assert ran.returncode == 1
    *progress, last = ran.stderr.strip().splitlines()
    assert last == f"error: cannot reach http://127.0.0.1:{port}: connection refused"
    retry = re.compile(rf"push: 127\.0\.0\.1:{port}: connection refused; retry (\d+) in [\d.]+ s")
    attempts = [int(m[1]) for line in progress if (m := retry.fullmatch(line))]
    assert attempts == list(range(1, len(progress) + 1)), ran.stderr  # each retry, said
    assert len(attempts) >= 3


async def test_tail_reports_its_retries_while_the_server_is_down(tmp_path: Path) -> None:
    tail = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard.cli", "tail", "ops",
        "--url", f"127.0.0.1:{free_port()}", stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert tail.stderr is not None
        line = await asyncio.wait_for(tail.stderr.readline(), 15)
        assert re.search(rb"retr|reconnect", line, re.IGNORECASE), line
        assert b"Traceback" not in line
    finally:
        tail.kill()
        await tail.wait()


@pytest.mark.parametrize(
    "command", [["serve"], ["migrate"], ["keys", "list"], ["keys", "create", "--role", "read"]]
)
def test_bad_settings_are_one_line_each(command: list[str], tmp_path: Path) -> None:
    env = {"SWITCHBOARD_DATABASE_URL": "nonsense", "SWITCHBOARD_PRESENCE_INTERVAL": "-1"}
    ran = _cli(*command, env=env, cwd=tmp_path)
    assert ran.returncode == 2
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 2, ran.stderr
    assert lines[0].startswith("error: SWITCHBOARD_DATABASE_URL='nonsense': must be sqlite")
    assert lines[1].startswith("error: SWITCHBOARD_PRESENCE_INTERVAL='-1': ")
    assert "greater than 0" in lines[1]
    assert ran.stdout == ""


async def test_demo_fills_a_public_board_and_reuses_its_key(tmp_path: Path) -> None:
    """With no token the demo makes a key in the store once, keeps it (0600) and reuses it."""
    env = {**_sqlite(tmp_path / "sb.db"), "XDG_STATE_HOME": str(tmp_path / "state")}
    server = await spawn_server({**env, "SWITCHBOARD_KEY_CACHE_TTL": "0"}, cwd=str(tmp_path))
    try:
        demo_env = {**env, "SWITCHBOARD_URL": server.base_url}
        for iterations in ("13", "1"):
            ran = await asyncio.to_thread(
                _cli, "demo", "--iterations", iterations, "--interval", "0.01",
                env=demo_env, cwd=tmp_path,
            )  # fmt: skip
            assert ran.returncode == 0, ran.stderr
            assert f"server {server.base_url}" in ran.stdout
            assert f"database sqlite+aiosqlite:///{tmp_path}/sb.db" in ran.stdout
            assert f"{server.base_url}/boards/demo" in ran.stdout
        async with httpx.AsyncClient(base_url=server.base_url) as anonymous:  # it is public
            board = (await anonymous.get("/api/boards/demo")).json()
        kinds = {w["kind"] for w in board["widgets"]}
        assert kinds == {"number", "gauge", "status", "series", "text"}
        assert board["seq"] >= 5 + 13 * 3 + 2 + 1  # widgets, 3 writes a tick, status, note
        latency = next(w for w in board["widgets"] if w["key"] == "latency")
        assert len(latency["value"]) == 1  # each run puts the widgets afresh
        listed = _cli("keys", "list", env=env, cwd=tmp_path).stdout
        assert listed.count("\tdemo\tactive\tdemo") == 1  # one key for both runs
        saved = tmp_path / "state" / "switchboard" / "demo-keys.json"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600

        key_id = next(line for line in listed.splitlines() if line.endswith("\tdemo")).split()[0]
        assert _cli("keys", "revoke", key_id, env=env, cwd=tmp_path).returncode == 0
        again = await asyncio.to_thread(
            _cli, "demo", "--iterations", "1", env=demo_env, cwd=tmp_path
        )  # the saved key is refused now: a new one is made and saved
        assert again.returncode == 0, again.stderr
        assert "refused the saved demo key; making a new one" in again.stdout
        listed = _cli("keys", "list", env=env, cwd=tmp_path).stdout
        assert listed.count("\tdemo\trevoked\tdemo") == 1
        assert listed.count("\tdemo\tactive\tdemo") == 1
    finally:
        server.stop()


def test_demo_elsewhere_creates_no_database(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "SWITCHBOARD_URL": "127.0.0.1:9",
        "SWITCHBOARD_DATABASE_URL": "",  # the default, ./switchboard.db
    }
    ran = _cli("demo", env=env, cwd=elsewhere)
    assert ran.returncode == 1
    line = _one_line_error(ran)
    assert f"no database at {elsewhere}/switchboard.db" in line
    assert "SWITCHBOARD_TOKEN" in line
    assert list(elsewhere.iterdir()) == []


async def test_demo_says_when_the_server_refuses_the_key_it_made(tmp_path: Path) -> None:
    """A key made in another database than the server's: one line naming both."""
    env = {**_sqlite(tmp_path / "sb.db"), "XDG_STATE_HOME": str(tmp_path / "state")}
    other = _sqlite(tmp_path / "other.db")
    migrated = _cli("migrate", env=other, cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert f"database: sqlite+aiosqlite:///{tmp_path}/other.db" in migrated.stderr
    server = await spawn_server(env, cwd=str(tmp_path))
    try:
        ran = await asyncio.to_thread(
            _cli, "demo", "--iterations", "1",
            env={**env, **other, "SWITCHBOARD_URL": server.base_url}, cwd=tmp_path,
        )  # fmt: skip
    finally:
        server.stop()
    assert ran.returncode == 1
    line = _one_line_error(ran)
    assert f"the server at {server.base_url} refused the key made in database" in line
    assert f"{tmp_path}/other.db" in line
    assert "different databases?" in line


async def test_demo_keeps_writing_across_a_server_restart(tmp_path: Path) -> None:
    env = {**_sqlite(tmp_path / "sb.db"), "XDG_STATE_HOME": str(tmp_path / "state")}
    server = await spawn_server(env, cwd=str(tmp_path))
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard.cli", "demo", "--interval", "0.1",
        env={**os.environ, **env, "SWITCHBOARD_URL": server.base_url},
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        while b"demo board ready" not in await asyncio.wait_for(demo.stdout.readline(), 30):
            pass
        server.stop()
        await asyncio.sleep(1.0)
        server = await spawn_server(env, cwd=str(tmp_path), port=server.port)
        async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
            before = (await anonymous.get("/api/boards/demo")).json()["seq"]
            await asyncio.sleep(3.0)
            after = (await anonymous.get("/api/boards/demo")).json()["seq"]
        assert after > before  # still writing
        assert demo.returncode is None
    finally:
        demo.kill()
        await demo.wait()
        server.stop()


@pytest.mark.parametrize("command", [["keys", "list"], ["migrate"], ["demo"]])
def test_a_store_that_is_down_is_one_line(command: list[str], tmp_path: Path) -> None:
    port = free_port()
    env = {
        "SWITCHBOARD_DATABASE_URL": f"postgresql+asyncpg://postgres:hunter2@127.0.0.1:{port}/sb",
        "XDG_STATE_HOME": str(tmp_path / "state"),
        "SWITCHBOARD_URL": "127.0.0.1:9",
    }
    ran = _cli(*command, env=env, cwd=tmp_path)
    assert ran.returncode == 1
    line = _one_line_error(ran)
    assert f"cannot use database postgresql+asyncpg://postgres@127.0.0.1:{port}/sb" in line
    assert "hunter2" not in ran.stdout + ran.stderr
