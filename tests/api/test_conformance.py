"""The served OpenAPI document is true: schemathesis with every check (`--checks all`) and
every phase (examples, coverage, fuzzing, stateful) against a real embedded server finds
nothing. The API's documented answers that a schema cannot express (a stale `If-Match`,
a reused `Idempotency-Key`, an opaque cursor, …) are configured, each with its reason, in
`schemathesis.toml` beside this file; its seed and deterministic generation make every
run send the same cases."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import httpx

from tests.helpers import ADMIN_KEY, AUTH, serve_processes

CONFIG = Path(__file__).with_name("schemathesis.toml")
RUN_TIMEOUT = 240.0


async def seed(base_url: str) -> int:
    """The board and widget the document's examples name (`ops`, `cpu`), so that the
    examples phase reaches the routes' own code rather than their 404; the number of
    operations the document describes."""
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        assert (await http.post("/api/boards", json={"slug": "ops"})).status_code == 201
        put = await http.put("/api/boards/ops/widgets/cpu", json={"kind": "number", "value": 1})
        assert put.status_code == 201
        paths = (await http.get("/openapi.json")).json()["paths"]
    return sum(len(item) for item in paths.values())


async def test_the_api_answers_as_its_document_says(tmp_path: Path) -> None:
    env = {
        "SWITCHBOARD_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/sb.db",
        "SWITCHBOARD_LOG_LEVEL": "warning",
    }
    async with serve_processes(env, 1) as (server,):
        operations = await seed(server.base_url)
        run = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "--no-color"),
            *("run", f"{server.base_url}/openapi.json", "--checks", "all"),
            *("--header", f"Authorization: Bearer {ADMIN_KEY}"),
            cwd=tmp_path,  # its reports and cache stay out of the checkout
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            output, _ = await asyncio.wait_for(run.communicate(), RUN_TIMEOUT)
        finally:
            if run.returncode is None:
                run.kill()
                await run.wait()
    report = output.decode(errors="replace")
    assert run.returncode == 0, report
    assert f"Tested: {operations}\n" in report, report  # every one, the SSE stream's included
