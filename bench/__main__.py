"""`uv run python -m bench [--quick] [--json PATH]`: run every phase, print a table and JSON."""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import platform
import sys
import uuid
from dataclasses import asdict
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.run import (
    CORES,
    PG_ADMIN,
    Phase,
    Server,
    batch_writes,
    fanout,
    idle_connections,
    raise_fd_limit,
    reference,
    single_writes,
    start_server,
    store_floor,
    writes,
)
from switchboard.store import migrate


async def _database(name: str, create: bool) -> str:
    admin = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        if create:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        else:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    if create:
        await migrate.upgrade(url)
    return url


KNEE_RATES = (4, 8, 12, 16, 20)
"""Writes/s for `--only knee`: 20,000 to 100,000 deliveries/s to 5,000 subscribers."""


def write_phases(server: Server, db: str, *, quick: bool) -> list[Phase]:
    """The write path against the store's own limit: the idle single PATCH first (nothing
    else running), then, per board count, the store floor (three statements, then one
    CTE) and REST PATCHes, each REST phase with its ratio to both floors of that run."""
    seconds, concurrency = (1.0, 4) if quick else (8.0, 16)
    phases = [single_writes(server, 20 if quick else 400)]
    for boards in (1,) if quick else (1, 16):
        floors = [
            store_floor(server, db, seconds, concurrency, boards, cte=cte) for cte in (False, True)
        ]
        rest = writes(server, seconds, concurrency, boards)
        for floor, name in zip(floors, ("x_floor_three", "x_floor_cte"), strict=True):
            rest.extra[name] = round(rest.extra["writes_per_s"] / floor.extra["writes_per_s"], 2)
        phases += [*floors, rest]
    phases.append(batch_writes(server, seconds, concurrency, 4 if quick else 20))
    return phases


def _table(phases: list[Phase]) -> str:
    head = (
        "| phase | subs | writes | deliveries | lost/dup/ooo | p50 ms | p99 ms | max ms"
        " | deliv/s | server µs/deliv | loadgen CPU |"
    )
    rows = [head, "|" + "---|" * 11]
    for p in phases:
        cells = [
            p.name,
            p.subscribers,
            p.writes,
            p.deliveries,
            f"{p.lost}/{p.duplicated}/{p.out_of_order}",
            p.p50_ms,
            p.p99_ms,
            p.max_ms,
            p.deliveries_per_s,
            p.server_cpu_us_per_delivery,
            p.loadgen_cpu_util,
        ]
        rows.append(
            "| "
            + " | ".join("—" if isinstance(c, float) and math.isnan(c) else str(c) for c in cells)
            + " |"
        )
    extras = [
        f"- **{p.name}**: " + ", ".join(f"{k} = {v}" for k, v in p.extra.items())
        for p in phases
        if p.extra
    ]
    return "\n".join([*rows, "", *extras])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds (CI)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--only",
        choices=["fanout", "writes", "idle", "knee"],
        default=None,
        help="only the 1,000-subscriber fan-out and saturation phases, only the write path"
        " (store floor, REST writes, the idle single PATCH, batches), only the idle"
        " connections on one worker, or only 5,000 subscribers at rising write rates"
        " (where latency turns up, and why: deliveries/s and CPU per delivery per rate)",
    )
    parser.add_argument(
        "--idle",
        type=lambda text: [int(n) for n in text.split(",")],
        default=None,
        metavar="N,N",
        help="how many idle connections the idle phases hold (default 1000,10000)",
    )
    args = parser.parse_args()
    raise_fd_limit()
    name = f"switchboard_bench_{uuid.uuid4().hex[:8]}"
    db = asyncio.run(_database(name, True))
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    phases: list[Phase] = []
    try:
        server = start_server(db, prefix, workers=2)
        try:
            if args.only == "idle":
                pass  # the idle phases below start their own one-worker servers
            elif args.quick:
                phases.append(fanout(server, "fan-out 20 subs @20/s", 20, 20, 3))
                phases += write_phases(server, db, quick=True)
            elif args.only == "writes":
                phases += write_phases(server, db, quick=False)
            elif args.only == "knee":
                for rate in KNEE_RATES:
                    phases.append(fanout(server, f"knee 5000 subs @{rate}/s", 5000, rate, 10))
            elif args.only == "fanout":
                phases.append(fanout(server, "fan-out 1000 subs @20/s", 1000, 20, 10))
                phases.append(
                    fanout(server, "saturation 1000 subs, writes flat out", 1000, None, 10, 8)
                )
            else:
                for n in (100, 1000, 5000):
                    phases.append(fanout(server, f"fan-out {n} subs @20/s", n, 20, 10))
                phases.append(
                    fanout(
                        server,
                        "saturation 1000 subs, writes flat out",
                        1000,
                        None,
                        10,
                        concurrency=8,
                    )
                )
                phases += write_phases(server, db, quick=False)
        finally:
            server.stop()
        if args.only in (None, "fanout", "idle"):
            # A fresh worker per count: a worker keeps the heap its last clients grew.
            for n in args.idle or ((100,) if args.quick else (1000, 10_000)):
                single = start_server(db, prefix, workers=1)
                try:
                    phases.append(idle_connections(single, n))
                finally:
                    single.stop()
        if args.only != "writes" and args.only != "idle":
            phases.append(reference(100 if args.quick else 1000, 50 if args.quick else 200))
    finally:
        asyncio.run(_database(name, False))
    result = {
        "machine": {
            "cpus": CORES,
            "platform": platform.platform(),
            "python": sys.version.split()[0],
        },
        "quick": args.quick,
        "phases": [asdict(p) for p in phases],
    }
    ref = phases[-1].server_cpu_us_per_delivery
    for p in phases:
        if p.deliveries and p.name.startswith(("fan-out", "saturation")) and ref:
            p.extra["x_reference_cpu"] = round(p.server_cpu_us_per_delivery / ref, 1)
    result["phases"] = [asdict(p) for p in phases]
    print(_table(phases))
    print(json.dumps(result, default=str))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    bad = [p.name for p in phases if p.lost or p.duplicated or p.out_of_order]
    if bad:
        print(f"FAILED: lost, duplicated or out-of-order deliveries in {bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
