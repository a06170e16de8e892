"""The widget PATCH as one statement on PostgreSQL (`store.patch`): it writes only what
its unlocked read validated, and seq stays gapless with versions in seq order."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from switchboard.store import patch, widgets
from switchboard.store.boards import create_board
from switchboard.store.db import Database
from switchboard.store.events import BOARDS
from switchboard.store.widgets import put_widget
from tests.helpers import LiveServer


async def _seq(db: Database, slug: str) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(BOARDS.c.seq).where(BOARDS.c.slug == slug)) or 0)


async def test_a_write_whose_read_went_stale_writes_nothing(
    production: LiveServer, slug: str
) -> None:
    """What validation used changed between the read and the statement: zero rows, no seq
    taken (no gap); the same write on a fresh read goes through."""
    db = production.state.db
    async with db.transaction() as tx:
        await create_board(tx, slug=slug, title="", description="", public=False)
    async with db.transaction() as tx:
        await put_widget(
            tx, slug, "g", kind="gauge", title="", config={"max": 100}, value=1, if_match=None
        )
    async with db.autocommit() as conn:
        board, stale = await patch._read(conn, slug, "g")
    changes: dict[str, Any] = {"value": 90}
    fields = widgets.patch_fields(stale, changes)
    narrowed = await patch.patch_widget(
        db, slug, "g", {"config": {"max": 50}}, if_match=None, idempotency_key=None
    )
    assert narrowed is not None
    assert narrowed.event[1].seq == 2
    async with db.autocommit() as conn:
        assert await patch._write(conn, slug, board, stale, changes, fields, None, None) is None
    assert await _seq(db, slug) == 2
    async with db.autocommit() as conn:
        board, fresh = await patch._read(conn, slug, "g")
        changes = {"value": 40}
        fields = widgets.patch_fields(fresh, changes)
        done = await patch._write(conn, slug, board, fresh, changes, fields, None, None)
    assert done is not None
    assert (done.event[1].seq, done.widget.version, done.data["version"]) == (3, 3, 3)


async def test_racing_patches_keep_every_widget_valid_and_seq_gapless(
    production: LiveServer, slug: str
) -> None:
    """Value writes and config writes on one gauge at once: whichever commits first, the
    other is validated against it (re-read) or refused (422), never written on a stale
    read. Every event is at seq N with the widget at version N, gapless."""
    await production.create_board(slug)
    await production.put_widget(slug, "g", kind="gauge", config={"min": 0, "max": 100}, value=10)
    path = f"/api/boards/{slug}/widgets/g"

    async def writer(n: int) -> list[int]:
        statuses = []
        for i in range(15):
            if n % 4 == 0:
                body: dict[str, Any] = {"config": {"min": 0, "max": 50 if i % 2 else 100}}
            else:
                body = {"value": 90 if (n + i) % 2 else 10, "title": f"t{n}"}
            statuses.append((await production.http.patch(path, json=body)).status_code)
        return statuses

    statuses = [s for batch in await asyncio.gather(*(writer(n) for n in range(12))) for s in batch]
    assert set(statuses) <= {200, 422}
    events = (await production.http.get(f"/api/boards/{slug}/events?limit=1000")).json()["items"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert len(events) == 1 + statuses.count(200)
    for event in events:
        data = event["data"]
        if data["version"] != event["seq"]:
            print(
                "MISMATCH",
                [
                    (
                        e["seq"],
                        e["data"]["version"],
                        e["event"],
                        e["data"].get("title"),
                        e["data"].get("value"),
                        e["data"]["config"]["max"],
                    )
                    for e in events
                    if abs(e["seq"] - event["seq"]) < 4
                ],
            )
        assert data["version"] == event["seq"]
        assert data["config"]["min"] <= data["value"] <= data["config"]["max"]
    widget = (await production.http.get(path)).json()
    assert widget == events[-1]["data"]
