"""`switchboard demo`: a lively sample board, so a newcomer sees the page move.

It writes through `switchboard_client` like any integration would, with the key from
`SWITCHBOARD_TOKEN`, or else a key of its own, limited to the demo board: made once in
the configured store, kept in `demo_keys`' file and reused while the server accepts it.
Only making that key needs the store, so only that path imports it (SQLAlchemy and
the migrations); and it never creates a store: the SQLite file must already exist,
or the key would be made in a database the server does not read.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import Callable
from typing import Any

from switchboard import database_url, demo_keys
from switchboard_client import AsyncClient, Conflict, RetryPolicy, Unauthorized

WIDGETS: dict[str, dict[str, Any]] = {
    "requests": {"kind": "number", "title": "Requests / min", "value": 1200},
    "cpu": {
        "kind": "gauge",
        "title": "CPU",
        "config": {"min": 0, "max": 100, "unit": "%", "thresholds": {"warn": 70, "crit": 90}},
        "value": 35,
    },
    "api": {"kind": "status", "title": "API", "value": "ok"},
    "latency": {
        "kind": "series",
        "title": "p95 latency",
        "config": {"max_points": 60, "unit": "ms"},
    },
    "deploy": {"kind": "text", "title": "Last deploy", "value": "v1.4.2 rolled out to 3 regions"},
}
STATUSES = ["ok"] * 8 + ["degraded", "down"]
NOTES = [
    "v1.4.3 canary at 5%",
    "v1.4.3 rolled out to eu-west",
    "Rollback of v1.4.3 on us-east: error rate above budget",
    "v1.4.4 hotfix deployed everywhere",
]
KEEP_GOING = RetryPolicy(attempts=100_000, max_backoff=5.0, deadline=3600.0)
"""Once the board is up, each write waits out a server restart (up to an hour)."""

Say = Callable[[str], None]


class DemoFailed(Exception):
    """The demo cannot run as configured; the message says what to change."""


async def start(
    url: str,
    token: str | None,
    *,
    board: str = "demo",
    interval: float = 1.0,
    iterations: int | None = None,
    say: Say = print,
) -> int:
    """Run the demo with `token`, or with the demo's own key for the configured store."""
    if token is not None:
        say(f"demo: server {url}, with the key from --token / SWITCHBOARD_TOKEN")
        return await run(url, token, board=board, interval=interval, iterations=iterations, say=say)
    store = _configured_store()
    name = database_url.shown(store)
    say(f"demo: server {url}, its own key from database {name}")
    saved = demo_keys.load(name, board)
    if saved is not None:
        try:
            return await run(
                url, saved, board=board, interval=interval, iterations=iterations, say=say
            )
        except Unauthorized:
            say("demo: the server refused the saved demo key; making a new one")
    secret = await _make_key(store, board)
    demo_keys.save(name, board, secret)
    try:
        return await run(
            url, secret, board=board, interval=interval, iterations=iterations, say=say
        )
    except Unauthorized:
        raise DemoFailed(
            f"the server at {url} refused the key made in database {name} "
            "(different databases? run the demo where the server runs, or set "
            "SWITCHBOARD_DATABASE_URL to the server's)"
        ) from None


def _configured_store() -> str:
    """The store's URL, if a key can be made there without creating a database."""
    store = database_url.from_environment()
    try:
        database_url.check(store)
    except ValueError as exc:
        raise DemoFailed(f"{database_url.ENVIRONMENT} {exc}") from None
    file = database_url.sqlite_file(store)
    if store.startswith("sqlite") and (file is None or not file.exists()):
        raise DemoFailed(
            f"no database at {file or store}: run `switchboard demo` where the server runs "
            "(beside its switchboard.db), or set SWITCHBOARD_TOKEN to a write key, or "
            "SWITCHBOARD_DATABASE_URL to the server's database"
        )
    return store


async def _make_key(store: str, board: str) -> str:
    """A write key limited to `board`, made in the store (this path alone imports it)."""
    from switchboard.cli.server import StoreFailed, create_key, store_errors

    try:
        with store_errors(store):
            return await create_key(store, role="write", boards=[board], name="demo")
    except StoreFailed as exc:
        raise DemoFailed(f"no demo key: {exc}") from None


async def run(
    url: str,
    token: str,
    *,
    board: str = "demo",
    interval: float = 1.0,
    iterations: int | None = None,
    say: Say = print,
) -> int:
    """Create the board and its widgets, then change them every `interval` seconds."""
    async with AsyncClient(url, token=token) as sb:
        with contextlib.suppress(Conflict):  # made by an earlier run
            await sb.create_board(board, title="Demo: web shop", public=True)
        for key, body in WIDGETS.items():
            await sb.put_widget(board, key, **body)
        say(f"demo board ready: {sb.base_url}/boards/{board}  (Ctrl-C to stop)")
        sb.retry = KEEP_GOING
        tick, requests, cpu = 0, 1200.0, 35.0
        while iterations is None or tick < iterations:
            tick += 1
            requests = max(0.0, requests + random.gauss(0, 60))
            cpu = min(100.0, max(0.0, cpu + random.gauss(0, 6)))
            latency = 120 + 40 * math.sin(tick / 6) + random.gauss(0, 8)
            writes = [
                sb.set(board, "requests", round(requests)),
                sb.set(board, "cpu", round(cpu, 1)),
                sb.append_points(board, "latency", [round(latency, 1)]),
            ]
            if tick % 5 == 0:
                writes.append(sb.set(board, "api", random.choice(STATUSES)))
            if tick % 12 == 0:
                writes.append(sb.set(board, "deploy", NOTES[(tick // 12) % len(NOTES)]))
            await asyncio.gather(*writes)
            await asyncio.sleep(interval)
        return tick
