"""The widget PATCH's two store paths write the same thing: one sequence of PATCHes runs
through the single statement (forced) on one board and through the locked path (forced)
on another with identical widgets, on PostgreSQL, and every answer and every stored row
(widgets, events with their data and seq, the board's seq, idempotency marks, what
retention kept) is compared between the two."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from switchboard.errors import AppError
from switchboard.store import patch, widgets
from switchboard.store.boards import create_board
from switchboard.store.db import Database, Retention
from switchboard.store.events import BOARDS, EVENTS, trim_committed
from switchboard.store.idempotency import Pending
from switchboard.store.models import Base, utcnow

IDEMPOTENCY = Base.metadata.tables["idempotency_keys"]
RETAINED = 30  # events kept per board: the sequence runs past a trim (every 100 seqs)
TIMES = frozenset({"created_at", "updated_at"})

Answer = tuple[int, Any]  # (200, the widget without its times) or (status, error)


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[Database]:
    database = Database(pg_url, retention=Retention(count=RETAINED), pool_size=4)
    try:
        yield database
    finally:
        await database.dispose()


class Board:
    """One board and the path its PATCHes take, answering as a client would see them."""

    def __init__(self, db: Database, slug: str, via: patch.Via) -> None:
        self.db, self.slug, self.via = db, slug, via
        self.recent = patch.Recent()  # the statement path's memory, used as in production

    async def patch(
        self, key: str, changes: dict[str, Any], *, if_match: int | None = None, idem: str = ""
    ) -> Answer:
        """The PATCH as `api.writes` makes it (the trim due after commit included)."""
        try:
            done = await patch.patch_widget(
                self.db,
                self.recent,
                self.slug,
                key,
                changes,
                if_match=if_match,
                idempotency=Pending(f"{self.slug}:{idem}", bytes) if idem else None,
                via=self.via,
            )
        except AppError as exc:
            return exc.status_code, {**exc.body()["error"], "message": self._own(exc.message)}
        assert done.data == done.events[-1][1].data  # the answer is the event's data
        if done.trim is not None:
            await trim_committed(self.db, done.trim)
        return 200, _timeless(done.data)

    def _own(self, text: str) -> str:
        return text.replace(self.slug, "<slug>")

    async def setup(self) -> None:
        async with self.db.transaction() as tx:
            await create_board(tx, slug=self.slug, title="", description="", public=False)
        for key, kind, config, value in WIDGETS:
            async with self.db.transaction() as tx:
                await widgets.put_widget(
                    tx, self.slug, key, kind=kind, title="", config=config, value=value,
                    if_match=None,
                )  # fmt: skip
        expires = utcnow() + timedelta(hours=1)
        async with self.db.transaction() as tx:
            for idem in IDEMPOTENCY_KEYS:
                await tx.session.execute(
                    insert(IDEMPOTENCY).values(
                        key=f"{self.slug}:{idem}", board=self.slug, fingerprint="f",
                        committed=False, headers={}, claimed_at=utcnow(), expires_at=expires,
                    )
                )  # fmt: skip

    async def delete(self, key: str) -> None:
        async with self.db.transaction() as tx:
            await widgets.delete_widget(tx, self.slug, key, if_match=None)

    async def version(self, key: str) -> int:
        async with self.db.read() as session:
            return (await widgets.get_widget(session, self.slug, key)).version

    async def rows(self) -> dict[str, Any]:
        """Everything stored for this board, ids and times left out."""
        async with self.db.read() as session:
            board_id, seq = (
                await session.execute(
                    select(BOARDS.c.id, BOARDS.c.seq).where(BOARDS.c.slug == self.slug)
                )
            ).one()
            stored = await session.execute(
                select(*widgets.COLUMNS)
                .where(widgets.WIDGETS.c.board_id == board_id)
                .order_by(widgets.WIDGETS.c.key)
            )
            events = await session.execute(
                select(EVENTS.c.seq, EVENTS.c.name, EVENTS.c.data)
                .where(EVENTS.c.board_id == board_id)
                .order_by(EVENTS.c.seq)
            )
            marks = await session.execute(
                select(IDEMPOTENCY.c.key, IDEMPOTENCY.c.committed).where(
                    IDEMPOTENCY.c.board == self.slug
                )
            )
        return {
            "seq": seq,
            "widgets": [_timeless(dict(row._mapping)) for row in stored],
            "events": [(s, name, _timeless(data)) for s, name, data in events],
            "marks": sorted((key.split(":")[1], committed) for key, committed in marks),
        }


def _timeless(value: Any) -> Any:
    """Without ids and times (each board's own), recursively."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in TIMES and k != "id"}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


WIDGETS: list[tuple[str, str, dict[str, Any], Any]] = [
    ("n", "number", {}, 0),
    ("g", "gauge", {"min": 0, "max": 100}, 10),
    ("s", "series", {"max_points": 4}, []),
    ("t", "text", {}, "hello"),
    ("r", "number", {}, 0),  # raced
]
IDEMPOTENCY_KEYS = ("k1", "k2", "k3", "k4")
POINTS = [{"t": f"2026-01-01T00:00:0{i}.000Z", "v": i} for i in range(6)]


async def _sequence(board: Board) -> list[Answer]:
    """The PATCHes both paths take, in order; each answer."""
    answers = [
        await board.patch("n", {"value": 1}),
        await board.patch("n", {"value": 2, "title": "N"}),
        await board.patch("n", {"title": "just the title"}),
        await board.patch("n", {"config": {"unit": "ms"}}),
        await board.patch("n", {"value": None}),
        await board.patch("g", {"config": {"min": 0, "max": 50}}),  # value 10 still fits
        await board.patch("g", {"value": 90}),  # over the new max: 422
        await board.patch("g", {"value": 40}),
        await board.patch("g", {"config": {"min": 0, "max": 20}}),  # the kept 40 no longer fits
        await board.patch("g", {"config": {"min": 5, "max": 1}}),  # a config no gauge takes
        # Retyping: the kind never changes; what another kind would take is refused.
        await board.patch("n", {"kind": "text", "value": "now text"}),
        await board.patch("g", {"value": POINTS[:2]}),
        await board.patch("t", {"value": 3}),
        await board.patch("t", {"kind": "number", "value": "still text"}),  # kind ignored
        # If-Match: current, stale, and current again after a write.
        await board.patch("n", {"value": 5}, if_match=await board.version("n")),
        await board.patch("n", {"value": 6}, if_match=1),
        await board.patch("n", {"value": 7}, if_match=await board.version("n")),
        # A series' value replaces its points, kept to max_points; a smaller max trims.
        await board.patch("s", {"value": POINTS}),
        await board.patch("s", {"value": POINTS[:1]}),
        await board.patch("s", {"value": POINTS[2:]}),
        await board.patch("s", {"config": {"max_points": 2}}),
        await board.patch("s", {"value": [{"v": "x"}]}),
        # Idempotency keys: marked with a write that commits, not with one refused.
        await board.patch("n", {"value": 8}, idem="k1"),
        await board.patch("g", {"value": 999}, idem="k2"),
        await board.patch("g", {"value": 1}, if_match=1, idem="k3"),
        await board.patch("t", {"value": "marked"}, idem="k4"),
        # Gone: the widget, then a board that never was.
        await board.patch("missing", {"value": 1}),
        await board.patch("n", {"value": 1}, if_match=10_000),
    ]
    await board.delete("t")
    answers += [
        await board.patch("t", {"value": "after delete"}),
        await board.patch("n", {"value": 9}),
    ]
    answers.append(await Board(board.db, f"{board.slug}-none", board.via).patch("n", {}))
    return answers


async def _race(board: Board) -> list[Any]:
    """Concurrent PATCHes of one widget; what does not depend on who won, sorted."""
    values = await asyncio.gather(*(board.patch("r", {"value": v}) for v in range(10, 18)))
    version = await board.version("r")
    guarded = await asyncio.gather(
        *(board.patch("r", {"value": 100 + v}, if_match=version) for v in range(5))
    )
    mixed = await asyncio.gather(
        *(board.patch("r", {"value": 50 + v, "title": f"t{v}"}) for v in range(6)),
        *(board.patch("r", {"config": {"unit": u}}) for u in ("a", "b", "c")),
    )
    settled = await board.patch("r", {"value": 1, "title": "", "config": {}})
    return [
        sorted((s, a["value"] if s == 200 else a["code"]) for s, a in values),
        sorted(a["version"] for s, a in values),
        sorted(s for s, _ in guarded),
        sorted(s for s, _ in mixed),
        settled,
    ]


def _widget_events(rows: dict[str, Any], key: str) -> list[Any]:
    return [e for e in rows["events"] if e[2].get("key") == key]


async def _both(
    db: Database, slug: str, run: Callable[[Board], Awaitable[Any]]
) -> tuple[Any, Any, Board, Board]:
    statement = Board(db, f"{slug}-st", patch.Via.STATEMENT)
    locked = Board(db, f"{slug}-lk", patch.Via.LOCKED)
    for board in (statement, locked):
        await board.setup()
    return await run(statement), await run(locked), statement, locked


async def test_both_store_paths_answer_and_store_alike(db: Database, slug: str) -> None:
    by_statement, by_lock, statement, locked = await _both(db, slug, _sequence)
    for n, (a, b) in enumerate(zip(by_statement, by_lock, strict=True)):
        assert a == b, f"PATCH #{n}"
    statuses = [status for status, _ in by_lock]
    assert {200, 404, 412, 422} <= set(statuses)  # the sequence meets every answer
    rows = await statement.rows(), await locked.rows()
    assert rows[0] == rows[1]
    assert rows[0]["marks"] == [("k1", True), ("k2", False), ("k3", False), ("k4", True)]
    assert [e[0] for e in rows[0]["events"]] == list(range(1, rows[0]["seq"] + 1))

    assert await _race(statement) == await _race(locked)
    rows = await statement.rows(), await locked.rows()
    assert rows[0]["seq"] == rows[1]["seq"]
    assert rows[0]["widgets"] == rows[1]["widgets"]
    # Who won each race differs; each widget's events, in seq order, are valid either way.
    for board_rows in rows:
        raced = _widget_events(board_rows, "r")
        assert [e[2]["version"] for e in raced] == list(range(1, len(raced) + 1))
    assert len(_widget_events(rows[0], "r")) == len(_widget_events(rows[1], "r"))

    # Past a trim (every 100 seqs): the same history kept on both paths, at every point.
    snapshots = []
    for board in (statement, locked):
        taken = []
        while (now := await board.rows())["seq"] < 130:
            if now["seq"] % 10 == 0 or now["seq"] == 99:
                unraced = [e for e in now["events"] if e[2].get("key") != "r"]  # who won differs
                taken.append({**now, "events": unraced})
            assert (await board.patch("n", {"value": now["seq"]}))[0] == 200
        snapshots.append([*taken, now])  # the race's events are all trimmed by now
    assert snapshots[0] == snapshots[1]
    kept = [[e[0] for e in rows["events"]] for rows in snapshots[0]]
    assert kept[-1] == list(range(71, 131))
    assert any(seqs[0] == 1 and seqs[-1] == 99 for seqs in kept)  # nothing trimmed before 100
