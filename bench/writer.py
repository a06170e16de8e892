"""The load generator's writer: widget PATCHes at a rate or flat out."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

from bench.http import Http1


async def write_loop(
    url: str,
    slugs: list[str],
    rate: float | None,
    duration: float,
    concurrency: int = 1,
    batch: int = 0,
    spread: bool = False,
) -> dict[str, Any]:
    """PATCH a number widget whose value is the send time (ms), at `rate`/s or flat out;
    writer i writes board `slugs[i % len(slugs)]`, or with `spread` a board picked at
    random for each write (many boards, few writes each). With `batch`, each write is one
    batch PATCH of widgets `n0`…`n{batch-1}`. Also returns the writes per board."""
    latencies: list[float] = []
    per_board: Counter[str] = Counter()
    end = time.monotonic() + duration

    async def worker(i: int) -> None:
        http = await Http1.open(url)
        next_at = time.monotonic()
        try:
            while time.monotonic() < end:
                slug = random.choice(slugs) if spread else slugs[i % len(slugs)]
                path = f"/api/boards/{slug}/widgets" + ("" if batch else "/n")
                started = time.perf_counter()
                value = time.time() * 1000
                body = {"widgets": {f"n{k}": {"value": value} for k in range(batch)}}
                status, answer = await http.request(
                    "PATCH", path, body if batch else {"value": value}
                )
                if status != 200:
                    raise RuntimeError(f"PATCH {path}: {status} {answer[:200]!r}")
                latencies.append(time.perf_counter() - started)
                per_board[slug] += 1
                if rate:
                    next_at += concurrency / rate
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        finally:
            http.close()

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return {"writes": len(latencies), "latencies": latencies, "per_board": per_board}
