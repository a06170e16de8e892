"""The store floor: what PostgreSQL itself allows a widget PATCH, for writes.py to compare
REST with (no entry of its own: it runs beside each REST write phase)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import asyncpg  # type: ignore[import-untyped]
import orjson

from bench.boards import make_boards, on_boards
from bench.measure import CpuSplit
from bench.phase import Phase, timed
from bench.server import Server

WIDGET = {"key": "n", "kind": "number", "title": "", "config": {}, "version": 2}
"""The event data of a floor write: a widget as REST shows it, the same size."""
FLOOR_THREE = (
    "UPDATE boards SET seq = seq + 1 WHERE id = $1 RETURNING seq",
    "UPDATE widgets SET value = $2::jsonb, version = version + 1, updated_at = $3 WHERE id = $1",
    "INSERT INTO events (board_id, seq, name, data, at)"
    " VALUES ($1, $2, 'widget.updated', $3::jsonb, $4)",
)
FLOOR_CTE = (
    "WITH b AS (UPDATE boards SET seq = seq + 1 WHERE id = $1 RETURNING id, seq),"
    " w AS (UPDATE widgets SET value = $3::jsonb, version = version + 1, updated_at = $4"
    " WHERE id = $2)"
    " INSERT INTO events (board_id, seq, name, data, at)"
    " SELECT b.id, b.seq, 'widget.updated', $5::jsonb, $4 FROM b"
)


def measure(
    server: Server, db_url: str, duration: float, concurrency: int, boards: int, *, cte: bool
) -> Phase:
    """What PostgreSQL itself allows a widget PATCH: lock the board row (taking its next
    seq), update the widget, insert the event, commit — straight through asyncpg, no
    HTTP, no ORM, `concurrency` writers, writer i on board i % `boards`. Three statements,
    or the same three as one CTE (one round trip)."""
    slugs = make_boards(server.url, boards)
    dsn = db_url.replace("postgresql+asyncpg://", "postgresql://")

    async def drive() -> list[float]:
        conn = await asyncpg.connect(dsn)
        rows = await conn.fetch(
            "SELECT b.id AS board, w.id AS widget FROM boards b JOIN widgets w"
            " ON w.board_id = b.id AND w.key = 'n' WHERE b.slug = ANY($1::text[])",
            slugs,
        )
        await conn.close()
        ids = [(r["board"], r["widget"]) for r in rows]
        latencies: list[float] = []
        end = time.monotonic() + duration

        async def writer(i: int) -> None:
            board, widget = ids[i % len(ids)]
            db = await asyncpg.connect(dsn)
            try:
                while time.monotonic() < end:
                    started = time.perf_counter()
                    now = datetime.now(UTC)
                    ms = time.time() * 1000
                    data = orjson.dumps({**WIDGET, "value": ms, "updated_at": now}).decode()
                    value = orjson.dumps(ms).decode()
                    async with db.transaction():
                        if cte:
                            await db.execute(FLOOR_CTE, board, widget, value, now, data)
                        else:
                            seq = await db.fetchval(FLOOR_THREE[0], board)
                            await db.execute(FLOOR_THREE[1], widget, value, now)
                            await db.execute(FLOOR_THREE[2], board, seq, data, now)
                    latencies.append(time.perf_counter() - started)
            finally:
                await db.close()

        await asyncio.gather(*(writer(i) for i in range(concurrency)))
        return latencies

    split = CpuSplit(server.cpu)
    t0 = time.monotonic()
    latencies = asyncio.run(drive())
    elapsed = time.monotonic() - t0
    return timed(
        f"store floor ({'one CTE' if cte else 'three statements'}), "
        f"{concurrency} concurrent, {on_boards(boards)}",
        latencies,
        writes_per_s=round(len(latencies) / elapsed, 1),
        cpu_ms_per_write=split.per_write(len(latencies)),
    )
