"""The npm package: its declarations type-check against a use of the whole API, its tarball
holds what a user needs, and once installed in Node 20 beside `ws` it drives a real server:
the documented example (REST, a live subscription, presence, a minted token) and every
REST method."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tarfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import ADMIN_KEY, AUTH, ServerProcess, spawn_server
from tests.js.conftest import PACKAGE, npm


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db"}
    process = await spawn_server(env, cwd=str(tmp_path))
    yield process
    process.stop()


def node(script: Path, server: ServerProcess, *args: str) -> str:
    """Run `script` (in a scratch project) against `server` with the admin key."""
    node_path = shutil.which("node")
    assert node_path is not None
    env = {**os.environ, "SWITCHBOARD_URL": server.base_url, "SWITCHBOARD_TOKEN": ADMIN_KEY}
    done = subprocess.run(
        [node_path, script.name, *args],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_declarations_type_check(package: Path) -> None:
    out = npm("run", "typecheck", cwd=package)
    assert "error" not in out


def test_the_declarations_catch_a_misuse(package: Path) -> None:
    """The check is real: an unknown option and a wrong argument type fail it."""
    usage = package / "examples" / "usage.ts"
    original = usage.read_text()
    try:
        usage.write_text(
            original + "\nnew Switchboard({ url: 1 });\nnew SwitchboardRest().getBoard(2);\n"
        )
        npm_path = shutil.which("npm")
        assert npm_path is not None
        done = subprocess.run(
            [npm_path, "run", "typecheck"], cwd=package, capture_output=True, text=True, timeout=120
        )
    finally:
        usage.write_text(original)
    assert done.returncode != 0
    assert done.stdout.count("error TS") == 2, done.stdout


def test_the_tarball_holds_the_client_its_types_and_the_example(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
        packed = archive.extractfile("package/src/switchboard.js")
        assert packed is not None
        source = packed.read()
    assert names == {
        "package/package.json",
        "package/README.md",
        "package/src/switchboard.js",
        "package/src/switchboard.d.ts",
        "package/examples/node.mjs",
    }
    assert source == (PACKAGE / "src" / "switchboard.js").read_bytes()


async def test_the_node_example_runs_against_a_server(scratch: Path, server: ServerProcess) -> None:
    """examples/node.mjs (what docs/js-client.md shows), from the installed package."""
    example = scratch / "node.mjs"
    shutil.copy(PACKAGE / "examples" / "node.mjs", example)
    lines = node(example, server, "from-node").splitlines()
    assert re.fullmatch(r"token for from-node, expires \d{4}-\d\d-\d\dT.*Z", lines[0]), lines
    assert lines[1:] == [
        "client: live",
        "from-node: subscribed",
        "snapshot at seq 1: jobs=1",
        "event widget.updated at seq 2: jobs=2",
        'viewers: {"bootstrap":1}',
        'joined: {"bootstrap":1,"token:bootstrap":1}',
        'left: {"bootstrap":1}',
        "from-node: unsubscribed",
        "client: offline",
    ]


async def test_every_rest_method_against_a_server(scratch: Path, server: ServerProcess) -> None:
    script = scratch / "rest_all.mjs"
    shutil.copy(Path(__file__).with_name("rest_all.mjs"), script)
    out = json.loads(node(script, server))
    refusal = {"hasDetails": False}
    assert out == {
        "created": "rest-a",
        "replayed": "rest-a",
        "conflict": {"status": 409, "code": "conflict", **refusal},
        "page": ["rest-a"],
        "all": ["rest-a", "rest-b"],
        "updated": "A2",
        "stale": {"status": 412, "code": "precondition_failed", **refusal},
        "put": 1,
        "patched": 2,
        "widget": 2,
        "batch": [3, "down"],
        "invalid": {"status": 422, "code": "validation_error", "hasDetails": True},
        "points": [1, 2],
        "missingWidget": {"status": 404, "code": "not_found", **refusal},
        "events": [
            "1 board.updated",
            "2 widget.created",
            "3 widget.updated",
            "4 widget.created",
            "5 widgets.updated",
            "6 widget.created",
            "7 widget.points",
            "8 widget.deleted",
        ],
        "token": {"role": "read", "boards": ["rest-a"]},
        "viewerReads": "A2",
        "viewerWrites": {"status": 403, "code": "forbidden", **refusal},
        "key": {"role": "write", "boards": ["rest-b"], "name": "node", "secret": True},
        "writerWrites": 5,
        # a key limited to other boards is told nothing of this one
        "writerElsewhere": {"status": 404, "code": "not_found", **refusal},
        "keys": 1,
        "revoked": True,
        "revokedWrites": {"status": 401, "code": "unauthorized", **refusal},
        "deleted": {"status": 404, "code": "not_found", **refusal},
        "health": "ok",
    }


async def test_node_refreshes_short_lived_tokens_in_band(
    scratch: Path, server: ServerProcess
) -> None:
    """`getToken` in Node: 3-second tokens for ~8 s on one `ws` socket, nothing missed."""
    script = scratch / "refresh.mjs"
    shutil.copy(Path(__file__).with_name("refresh.mjs"), script)
    out = json.loads(node(script, server))
    assert out["sockets"] == 1
    assert out["tokens"] >= 4  # the first, then one before each expiry
    assert out["values"] == list(range(9))
    assert out["states"] == ["live", "offline"]  # never reconnecting


class Lines:
    """A Node script's stdout, one JSON object a line, read as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen: list[dict[str, Any]] = []

    async def until(self, wanted: dict[str, Any], timeout: float = 20) -> None:
        """Read lines until one holds every item of `wanted`."""
        async with asyncio.timeout(timeout):
            while not any(wanted.items() <= line.items() for line in self.seen):
                assert self.process.stdout is not None
                raw = await self.process.stdout.readline()
                assert raw, f"the script ended: {self.seen}"
                self.seen.append(json.loads(raw))


async def test_node_resumes_with_since_after_a_server_restart(
    scratch: Path, tmp_path: Path
) -> None:
    """A restarted server (1012): the `ws` client reconnects, the subscription goes
    `subscribing` then `subscribed` again, and the change made meanwhile arrives as an
    event (resumed with `since`), not as a new snapshot."""
    env = {"SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db"}
    first = await spawn_server(env, cwd=str(tmp_path))
    second: ServerProcess | None = None
    script = scratch / "resume.mjs"
    shutil.copy(Path(__file__).with_name("resume.mjs"), script)
    node_path = shutil.which("node")
    assert node_path is not None
    async with httpx.AsyncClient(base_url=first.base_url, headers=AUTH, timeout=10) as api:
        await api.post("/api/boards", json={"slug": "resume"})
        await api.put("/api/boards/resume/widgets/n", json={"kind": "number", "value": 0})
        process = await asyncio.create_subprocess_exec(
            node_path,
            script.name,
            cwd=scratch,
            env={**os.environ, "SWITCHBOARD_URL": first.base_url, "SWITCHBOARD_TOKEN": ADMIN_KEY},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        lines = Lines(process)
        try:
            await lines.until({"value": 0, "seq": 1, "snapshot": True})
            await api.patch("/api/boards/resume/widgets/n", json={"value": 1})
            await lines.until({"value": 1, "seq": 2, "snapshot": False})
            first.stop()
            await lines.until({"client": "reconnecting"})
            second = await spawn_server(env, cwd=str(tmp_path), port=first.port)
            await api.patch("/api/boards/resume/widgets/n", json={"value": 2})
            await lines.until({"value": 2, "seq": 3}, timeout=40)
            assert process.stdin is not None
            process.stdin.close()
            await lines.until({"closed": "offline"})
            assert await process.wait() == 0
        finally:
            if process.returncode is None:
                process.kill()
            if second is not None:
                second.stop()
            first.stop()
    assert {"client": "reconnecting", "code": 1012} in lines.seen
    subs = [line["sub"] for line in lines.seen if "sub" in line]
    assert subs == ["subscribed", "subscribing", "subscribed", "unsubscribed"]
    values = [(line["value"], line["snapshot"]) for line in lines.seen if "value" in line]
    assert values == [(0, True), (1, False), (2, False)]
