"""The widget PATCH as one statement on PostgreSQL (`store.patch`): it writes only what
its unlocked read validated, and seq stays gapless with versions in seq order."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from switchboard.errors import ValidationFailed
from switchboard.store import patch, widgets
from switchboard.store.boards import create_board
from switchboard.store.db import Database
from switchboard.store.events import BOARDS
from switchboard.store.models import utcnow
from switchboard.store.widgets import put_widget
from tests.conftest import backend_settings, own_database
from tests.helpers import LiveServer, start_server


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
    async with db.direct() as conn:
        board, stale = await patch._read(conn, slug, "g")
    changes: dict[str, Any] = {"value": 90}
    fields = widgets.patch_fields(stale, changes)
    narrowed = await patch.patch_widget(
        db,
        patch.Recent(),
        slug,
        "g",
        {"config": {"max": 50}},
        if_match=None,
        idempotency=None,
        via=patch.Via.STATEMENT,
    )
    assert narrowed.events[0][1].seq == 2
    async with db.direct() as conn:
        assert await patch._write(conn, slug, board, stale, changes, fields, None, None) is None
    assert await _seq(db, slug) == 2
    async with db.direct() as conn:
        board, fresh = await patch._read(conn, slug, "g")
        changes = {"value": 40}
        fields = widgets.patch_fields(fresh, changes)
        done = await patch._write(conn, slug, board, fresh, changes, fields, None, None)
    assert done is not None
    assert (done.events[0][1].seq, done.widget.version, done.data["version"]) == (3, 3, 3)


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
        assert data["version"] == event["seq"]
        assert data["config"]["min"] <= data["value"] <= data["config"]["max"]
    widget = (await production.http.get(path)).json()
    assert widget == events[-1]["data"]


REFUSE_DELETES = [
    "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'no'; END $$"
    " LANGUAGE plpgsql",
    "CREATE TRIGGER refuse BEFORE DELETE ON events FOR EACH STATEMENT EXECUTE FUNCTION refuse()",
]


async def test_a_failed_trim_leaves_the_committed_patch_answered(prefix: str, slug: str) -> None:
    """Retention runs after the PATCH's statement committed: a trim that fails must not
    answer that write with 503 (a retry would write it twice); the next one catches up."""
    async with own_database() as (_, url):
        settings = backend_settings("production", Path(), url, prefix, event_retention=50)
        async with start_server(settings) as live:
            await live.create_board(slug)
            await live.put_widget(slug, "w", value=0)
            async with live.state.db.direct() as conn:
                for statement in REFUSE_DELETES:
                    await conn.execute(statement)
            for i in range(1, 100):  # seq 2…100: the trim at 100 fails
                await live.set_value(slug, "w", i)
            async with live.state.db.direct() as conn:
                await conn.execute("DROP TRIGGER refuse ON events")
            history = (await live.http.get(f"/api/boards/{slug}/events?limit=1000")).json()
            assert [e["seq"] for e in history["items"]] == list(range(1, 101))
            for i in range(100, 200):  # seq 101…200: the trim at 200 cuts below 151
                await live.set_value(slug, "w", i)
            events = f"/api/boards/{slug}/events"
            assert (await live.http.get(events)).status_code == 410  # 1…150 are gone
            history = (await live.http.get(events, params={"after": 150, "limit": 100})).json()
            assert [e["seq"] for e in history["items"]] == list(range(151, 201))


VIA = patch.Via.STATEMENT  # what these tests are about: never the locked path


async def _gauge(live: LiveServer, slug: str, maximum: int) -> None:
    await live.create_board(slug)
    await live.put_widget(slug, "g", kind="gauge", config={"min": 0, "max": maximum}, value=10)


async def _patch(
    live: LiveServer, recent: patch.Recent, slug: str, changes: dict[str, Any], **kw: Any
) -> patch.Patched:
    """A PATCH by a worker whose memory is `recent` (two of them: two workers)."""
    kw.setdefault("if_match", None)
    return await patch.patch_widget(
        live.state.db, recent, slug, "g", changes, idempotency=None, via=VIA, **kw
    )


async def test_a_remembered_widget_that_went_stale_is_read_afresh(
    production: LiveServer, slug: str
) -> None:
    """Worker A remembers the gauge at max 100; worker B narrows it to 50. A's PATCH of
    90 is refused by the fresh read (422), not written on the stale row; its PATCH of 40
    carries the config as it now is. The other way round, a refusal on a stale row is
    not trusted either: widened again by B, A's 90 goes through."""
    await _gauge(production, slug, 100)
    a, b = patch.Recent(), patch.Recent()
    await _patch(production, a, slug, {"value": 20})
    assert a.get(slug, "g") is not None
    await _patch(production, b, slug, {"config": {"min": 0, "max": 50}})
    seq = await _seq(production.state.db, slug)
    refused = await production.http.get(f"/api/boards/{slug}/widgets/g")
    with pytest.raises(ValidationFailed):  # 90 is over the gauge's max of 50
        await _patch(production, a, slug, {"value": 90})
    assert await _seq(production.state.db, slug) == seq  # nothing written
    assert (await production.http.get(f"/api/boards/{slug}/widgets/g")).json() == refused.json()
    done = await _patch(production, a, slug, {"value": 40})
    assert done.data["config"]["max"] == 50
    await _patch(production, b, slug, {"config": {"min": 0, "max": 100}})
    done = await _patch(production, a, slug, {"value": 90})  # A remembers max 50
    assert (done.data["value"], done.data["config"]["max"]) == (90, 100)
    events = (await production.http.get(f"/api/boards/{slug}/events?limit=100")).json()
    assert [e["data"]["version"] for e in events["items"][1:]] == [2, 3, 4, 5, 6]


async def test_if_match_and_a_new_board_are_never_answered_from_memory(
    production: LiveServer, slug: str
) -> None:
    await _gauge(production, slug, 100)
    a, b = patch.Recent(), patch.Recent()
    await _patch(production, a, slug, {"value": 20})  # A: version 2
    await _patch(production, b, slug, {"value": 30})  # version 3
    done = await _patch(production, a, slug, {"value": 40}, if_match=3)
    assert done.data["version"] == 4
    assert (await production.http.delete(f"/api/boards/{slug}")).status_code == 204
    await _gauge(production, slug, 100)  # the same slug, a new board and widget
    done = await _patch(production, a, slug, {"value": 50})
    assert done.data["version"] == 2
    board = (await production.http.get(f"/api/boards/{slug}")).json()
    assert (board["seq"], board["widgets"][0]["value"]) == (done.events[0][1].seq, 50)


def test_recent_keeps_the_newest_rows() -> None:
    recent = patch.Recent(limit=2)
    row = widgets.WidgetRow(1, "k", "number", "", {}, 0, 1, utcnow(), utcnow())
    for key in ("a", "b", "a", "c"):
        recent.put("s", key, 1, row)
    assert sorted(k for _, k in recent.rows) == ["a", "c"]
    assert recent.rows[("s", "a")][1].value is None  # a value is never kept
    recent.put("s", "a", 1, replace(row, config={"labels": "x" * patch.RECENT_ROW_MAX}))
    assert recent.get("s", "a") is None  # nor a row with a large config
    recent.put("s", "a", 1, row)
    recent.drop("s", "a")
    assert recent.get("s", "a") is None
    assert recent.get("s", "c") is not None
