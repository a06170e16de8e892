"""The boards a phase writes to, made through the REST API."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from bench.env import AUTH


async def _board(url: str, slug: str, widgets: int = 0) -> None:
    """A board with number widget `n` (and `n0`…`n{widgets-1}` for batches)."""
    async with httpx.AsyncClient(base_url=url, headers=AUTH) as http:
        await http.post("/api/boards", json={"slug": slug})
        for key in ["n", *(f"n{k}" for k in range(widgets))]:
            put = await http.put(f"/api/boards/{slug}/widgets/{key}", json={"kind": "number"})
            put.raise_for_status()


def make_boards(url: str, count: int, widgets: int = 0) -> list[str]:
    """`count` new boards; their slugs."""
    slugs = [f"bench-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for slug in slugs:
        asyncio.run(_board(url, slug, widgets))
    return slugs


def on_boards(count: int) -> str:
    """How a phase's name says its board count."""
    return "1 board" if count == 1 else f"{count} boards"
