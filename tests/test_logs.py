"""Logs of a real `switchboard serve`: with `SWITCHBOARD_LOG_JSON=true` every line the
process writes (uvicorn's, the app's, and with `--workers 2` the supervisor's and each
worker's) is one JSON object; each request and WebSocket connection has an id shared by
its access line, the app's lines and its `X-Request-ID` response header; credentials
never appear."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from switchboard.logs import redact
from tests.conftest import production_env
from tests.helpers import ADMIN_KEY, AUTH, WsClient, spawn_server, sse

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class Visit:
    """What the client did and saw: the request id of each step, the secrets it used."""

    ids: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=lambda: [ADMIN_KEY])


def _id(response: httpx.Response) -> str:
    rid = response.headers["X-Request-ID"]
    assert isinstance(rid, str)
    return rid


async def _visit(base_url: str, ws_url: str, slug: str) -> Visit:
    """A REST write with a header credential, an SSE stream with `?token=`, WebSockets
    (header credential and `?token=`), a 404, and request ids given or not."""
    visit = Visit()
    async with httpx.AsyncClient(base_url=base_url, headers=AUTH) as http:
        given = await http.post(
            "/api/boards", json={"slug": slug}, headers={"X-Request-ID": "client-chose.this:1"}
        )
        assert given.status_code == 201
        assert _id(given) == "client-chose.this:1"
        insane = await http.get(f"/api/boards/{slug}", headers={"X-Request-ID": "two words"})
        assert GENERATED_ID.fullmatch(_id(insane))

        created = await http.post("/api/keys", json={"role": "write"})
        assert created.status_code == 201
        key = created.json()
        visit.ids["key_created"] = _id(created)
        writer = {"Authorization": f"Bearer {key['key']}"}
        minted = await http.post("/api/tokens", json={}, headers=writer)
        token = minted.json()["token"]
        visit.secrets += [key["key"], token]

        written = await http.put(
            f"/api/boards/{slug}/widgets/w", json={"kind": "number", "value": 1}, headers=writer
        )
        assert written.status_code == 201
        visit.ids["write"] = _id(written)

        asset = await http.get("/static/style.css")  # served by a `Mount`
        assert asset.status_code == 200
        visit.ids["asset"] = _id(asset)

        missing = await http.get("/api/boards/no-such-board")
        assert missing.status_code == 404
        visit.ids["404"] = _id(missing)

        async with (
            httpx.AsyncClient(base_url=base_url) as anonymous,
            sse(anonymous, f"/api/boards/{slug}/stream?token={token}") as stream,
        ):
            assert (await stream.next()).event == "snapshot"
            visit.ids["sse"] = _id(stream.response)

        for name, url, headers in [
            ("ws", ws_url, AUTH),
            ("ws_token", f"{ws_url}?token={token}", {}),
        ]:
            connection = await connect(url, additional_headers=headers)
            assert connection.response is not None
            visit.ids[name] = connection.response.headers["X-Request-ID"]
            ws = WsClient(connection)
            await ws.subscribe(slug)
            assert (await ws.recv())["type"] == "snapshot"
            await ws.close()

        assert (await http.delete(f"/api/keys/{key['id']}")).status_code == 204
    return visit


def _parsed(text: str) -> list[dict[str, Any]]:
    """Every line as a JSON object with a timestamp, a level and an event (or fail)."""
    lines = text.splitlines()
    assert lines
    records = []
    for line in lines:
        record = json.loads(line)
        assert isinstance(record, dict), line
        assert {"timestamp", "level", "event"} <= record.keys(), line
        assert isinstance(record["event"], str), line
        records.append(record)
    return records


def _one(records: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    found = [r for r in records if all(r.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, found)
    return found[0]


def _check(records: list[dict[str, Any]], visit: Visit, slug: str) -> None:
    ids = visit.ids
    created = _one(records, event="key_created")  # an app line, inside the request
    assert created["logger"] == "switchboard.api.keys"
    access = _one(records, event="request", request_id=ids["key_created"])
    assert created["request_id"] == access["request_id"]
    assert (access["method"], access["path"], access["status"]) == ("POST", "/api/keys", 201)
    assert access["logger"] == "switchboard.access"
    assert isinstance(access["duration_ms"], float | int)
    assert access["client"].startswith("127.0.0.1:")

    write = _one(records, event="request", request_id=ids["write"])
    assert (write["method"], write["path"], write["status"]) == (
        "PUT",
        f"/api/boards/{slug}/widgets/w",
        201,
    )
    assert _one(records, event="request", request_id=ids["404"])["status"] == 404
    assert _one(records, event="request", request_id=ids["asset"])["path"] == "/static/style.css"
    stream = _one(records, event="request", request_id=ids["sse"])
    assert stream["path"] == f"/api/boards/{slug}/stream?token=[redacted]"
    assert stream["status"] == 200
    assert _one(records, event="request", request_id="client-chose.this:1")["status"] == 201

    for name, path in [("ws", "/ws"), ("ws_token", "/ws?token=[redacted]")]:
        ws = _one(records, event="websocket", request_id=ids[name])
        assert (ws["path"], ws["status"]) == (path, 101)
        assert ws["close_code"] == 1000
        # uvicorn's own lines about the handshake are logged inside the connection's context
        uvicorns = {r["event"] for r in records if r.get("request_id") == ids[name]} - {"websocket"}
        assert uvicorns == {f'{ws["client"]} - "WebSocket {path}" [accepted]', "connection open"}


async def _serve_and_visit(
    env: dict[str, str], tmp_path: Path, slug: str, workers: int
) -> tuple[list[dict[str, Any]], Visit]:
    log = tmp_path / "server.log"  # its stdout and stderr
    env = {**env, "SWITCHBOARD_LOG_JSON": "true", "SWITCHBOARD_LOG_LEVEL": "info"}
    # A loaded machine can take over uvicorn's 5 s health check to start a worker (uvicorn
    # then replaces it), so workers get longer.
    server = await spawn_server(env, workers=workers, log=log, timeout=20 * workers)
    try:
        visit = await _visit(server.base_url, server.ws_url, slug)
    finally:
        server.stop()  # SIGTERM: the shutdown lines are in the log too
    text = log.read_text()
    for secret in visit.secrets:
        assert secret not in text
    assert "Bearer" not in text
    return _parsed(text), visit


async def test_every_line_is_json_with_request_ids_and_no_secrets(
    pg_url: str, prefix: str, slug: str, tmp_path: Path
) -> None:
    records, visit = await _serve_and_visit(production_env(pg_url, prefix), tmp_path, slug, 1)
    _check(records, visit, slug)
    assert _one(records, event="started")["logger"] == "switchboard.app"
    assert _one(records, event="Application shutdown complete.")["logger"] == "uvicorn.error"
    assert len(records) >= 20


async def test_every_line_is_json_with_two_workers(
    pg_url: str, prefix: str, slug: str, tmp_path: Path
) -> None:
    """The supervisor and both workers (spawned processes) log through the same pipeline."""
    records, visit = await _serve_and_visit(production_env(pg_url, prefix), tmp_path, slug, 2)
    _check(records, visit, slug)
    assert len([r for r in records if r["event"] == "started"]) >= 2
    parent = [r for r in records if r["event"].startswith("Started parent process")]
    assert len(parent) == 1
    workers = {r["event"] for r in records if r["event"].startswith("Started server process")}
    assert len(workers) >= 2  # one line per worker process (pid), replacements included


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("/ws?token=abc.def&x=1", "/ws?token=[redacted]&x=1"),
        ("GET /stream?since=3&token=abc", "GET /stream?since=3&token=[redacted]"),
        ('"WebSocket /ws?token=abc" [accepted]', '"WebSocket /ws?token=[redacted]" [accepted]'),
        ("Authorization: Bearer sbk_x_y", "Authorization: Bearer [redacted]"),
        ("redis://:hunter2@cache:6379/0", "redis://:[redacted]@cache:6379/0"),
        ("postgresql+asyncpg://sb:pw@db/sb", "postgresql+asyncpg://sb:[redacted]@db/sb"),
        ("postgresql://db/sb and user@example.org", "postgresql://db/sb and user@example.org"),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown
