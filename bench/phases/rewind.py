"""Rewind: `GET /api/boards/{slug}?at=<seq>` on a board with a long history (10,000 events
of a mix of writes on 20 widgets, a series among them), at seqs spread over it, beside the
live `GET` of the same board. The rows each rebuild reads (one checkpoint and the events
after it) are counted by the store's own `rebuild`, run on the same database, and timed
there beside the store's live read (`load_board`): the store's cost without HTTP."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from bench.boards import make_boards
from bench.http import Http1
from bench.phase import Phase, pct, timed
from bench.runner import Run
from bench.server import Server
from switchboard.store import boards, checkpoints
from switchboard.store.db import Database
from switchboard.store.events import find_board

NUMBERS = 18  # number widgets n0…n17, beside the series `s` and the text `t`


def run(context: Run) -> list[Phase]:
    events, reads = (500, 50) if context.quick else (10_000, 400)
    return measure(context.server, context.db, events, reads)


def _write(i: int) -> tuple[str, str, object]:
    """The `i`th write of the mix: mostly single PATCHes, points, batches, a text PUT."""
    step = i % 10
    if step < 6:
        return "PATCH", f"/widgets/n{i % NUMBERS}", {"value": i}
    if step < 8:
        return "POST", "/widgets/s/points", {"points": [{"v": i}, {"v": -i}]}
    if step == 8:
        return "PATCH", "/widgets", {"widgets": {f"n{k}": {"value": i + k} for k in range(5)}}
    return "PUT", "/widgets/t", {"kind": "text", "value": f"note {i}"}


async def _fill(url: str, slug: str, events: int) -> int:
    """Writes until the board's seq is `events`; returns it."""
    http = await Http1.open(url)
    base = f"/api/boards/{slug}"
    try:
        setup: list[tuple[str, str, object]] = [
            ("PUT", f"/widgets/n{k}", {"kind": "number", "value": 0}) for k in range(NUMBERS)
        ]
        setup.append(("PUT", "/widgets/s", {"kind": "series", "config": {"max_points": 200}}))
        writes = [*setup, *(_write(i) for i in range(events))]
        seq = 1  # `make_boards` put widget `n`
        for method, path, body in writes:
            if seq == events:
                break
            status, answer = await http.request(method, base + path, body)
            assert status in (200, 201), answer
            seq += 1
        return seq
    finally:
        http.close()


async def _time_gets(url: str, paths: list[str]) -> list[float]:
    http = await Http1.open(url)
    latencies = []
    try:
        for path in paths:
            started = time.perf_counter()
            status, answer = await http.request("GET", path, None)
            assert status == 200, answer
            latencies.append(time.perf_counter() - started)
    finally:
        http.close()
    return latencies


@dataclass
class Store:
    """The store's side, without HTTP: rows each rebuild read, the checkpoints they started
    from, and the seconds each rebuild took beside each live read (`load_board`)."""

    rows: list[int] = field(default_factory=list)
    bases: set[int] = field(default_factory=set)
    rebuilds: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)


async def _store(db_url: str, slug: str, seqs: list[int]) -> Store:
    db = Database(db_url)
    found = Store()
    try:
        async with db.read() as session:
            board = await find_board(session, slug)
            for seq in seqs:
                started = time.perf_counter()
                past = await checkpoints.rebuild(session, board.id, seq)
                found.rebuilds.append(time.perf_counter() - started)
                assert past is not None, seq
                found.rows.append(past.rows)
                found.bases.add(past.base)
                started = time.perf_counter()
                await boards.load_board(session, slug)
                found.loads.append(time.perf_counter() - started)
        return found
    finally:
        await db.dispose()


def _ms(seconds: list[float], q: float) -> float:
    return round(pct(seconds, q) * 1000, 2)


def measure(server: Server, db_url: str, events: int, reads: int) -> list[Phase]:
    slug = make_boards(server.url, 1)[0]
    seq = asyncio.run(_fill(server.url, slug, events))
    seqs = random.Random(24).sample(range(seq + 1), reads)
    base = f"/api/boards/{slug}"
    asyncio.run(_time_gets(server.url, [f"{base}?at={s}" for s in seqs[:20]]))  # warm up
    past = asyncio.run(_time_gets(server.url, [f"{base}?at={s}" for s in seqs]))
    live = asyncio.run(_time_gets(server.url, [base] * reads))
    store = asyncio.run(_store(db_url, slug, seqs))
    return [
        timed(
            f"rewind GET ?at=, {seq:,}-event board, {reads} seqs",
            past,
            rows_read_p50=pct([float(r) for r in store.rows], 0.5),
            rows_read_max=max(store.rows),
            checkpoints_used=len(store.bases),
            store_rebuild_ms_p50=_ms(store.rebuilds, 0.5),
            store_rebuild_ms_p99=_ms(store.rebuilds, 0.99),
            store_live_read_ms_p50=_ms(store.loads, 0.5),
            store_live_read_ms_p99=_ms(store.loads, 0.99),
        ),
        timed(f"live GET, the same {seq:,}-event board", live),
    ]
