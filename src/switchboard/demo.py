"""`switchboard demo`: a lively sample board, so a newcomer sees the page move.

It writes through the REST API like any integration would, with a key from
`SWITCHBOARD_TOKEN` (or one it creates in the configured store, limited to the
demo board).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from typing import Any

import httpx

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


async def run(
    url: str,
    token: str,
    *,
    board: str = "demo",
    interval: float = 1.0,
    iterations: int | None = None,
    say: Callable[[str], None] = print,
) -> int:
    """Create the board and its widgets, then change them every `interval` seconds."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=10) as http:
        widget = f"/api/boards/{board}/widgets"
        created = await http.post(
            "/api/boards",
            json={"slug": board, "title": "Demo: web shop", "public": True},
        )
        if created.status_code not in (201, 409):
            created.raise_for_status()
        for key, body in WIDGETS.items():
            (await http.put(f"{widget}/{key}", json=body)).raise_for_status()
        say(f"demo board ready: {url.rstrip('/')}/boards/{board}  (Ctrl-C to stop)")
        tick, requests, cpu = 0, 1200.0, 35.0
        while iterations is None or tick < iterations:
            tick += 1
            requests = max(0.0, requests + random.gauss(0, 60))
            cpu = min(100.0, max(0.0, cpu + random.gauss(0, 6)))
            latency = 120 + 40 * math.sin(tick / 6) + random.gauss(0, 8)
            writes = [
                http.patch(f"{widget}/requests", json={"value": round(requests)}),
                http.patch(f"{widget}/cpu", json={"value": round(cpu, 1)}),
                http.post(
                    f"{widget}/latency/points",
                    json={"points": [{"v": round(latency, 1)}]},
                ),
            ]
            if tick % 5 == 0:
                writes.append(http.patch(f"{widget}/api", json={"value": random.choice(STATUSES)}))
            if tick % 12 == 0:
                note = NOTES[(tick // 12) % len(NOTES)]
                writes.append(http.patch(f"{widget}/deploy", json={"value": note}))
            for response in await asyncio.gather(*writes):
                response.raise_for_status()
            await asyncio.sleep(interval)
        return tick
