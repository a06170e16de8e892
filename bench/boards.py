"""The boards a phase writes to, made through the REST API."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from bench.env import AUTH


async def _board(http: httpx.AsyncClient, slug: str, widgets: int) -> None:
    """A board with number widget `n` (and `n0`…`n{widgets-1}` for batches)."""
    await http.post("/api/boards", json={"slug": slug})
    for key in ["n", *(f"n{k}" for k in range(widgets))]:
        put = await http.put(f"/api/boards/{slug}/widgets/{key}", json={"kind": "number"})
        put.raise_for_status()


async def _boards(url: str, slugs: list[str], widgets: int, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=AUTH, limits=limits, timeout=60) as http:
        gate = asyncio.Semaphore(concurrency)

        async def one(slug: str) -> None:
            async with gate:
                await _board(http, slug, widgets)

        await asyncio.gather(*(one(slug) for slug in slugs))


def make_boards(url: str, count: int, widgets: int = 0, concurrency: int = 1) -> list[str]:
    """`count` new boards, `concurrency` made at a time (thousands of boards: 16); their
    slugs."""
    slugs = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    asyncio.run(_boards(url, slugs, widgets, concurrency))
    return slugs


def on_boards(count: int) -> str:
    """How a phase's name says its board count."""
    return "1 board" if count == 1 else f"{count} boards"
