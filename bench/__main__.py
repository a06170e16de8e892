"""`uv run python -m bench [--quick] [--json PATH] [--only GROUP]`: run the phases, print a
table and JSON. A phase is a module of bench/phases/ and one line of `PHASES` below."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path

from bench import report, runner
from bench.measure import raise_fd_limit
from bench.phases import (
    batch,
    cluster,
    fanout,
    idle,
    knee,
    many_boards,
    reference,
    rewind,
    saturation,
    single,
    writes,
)
from bench.runner import Entry, Run
from bench.server import database

PHASES = [
    Entry(fanout.run, only=("fanout",)),
    Entry(saturation.run, only=("fanout",), quick=False),
    Entry(knee.run, only=("knee",), full=False, quick=False),
    Entry(single.run, only=("writes",)),
    Entry(writes.run, only=("writes",)),
    Entry(batch.run, only=("writes",)),
    Entry(rewind.run, only=("rewind",)),
    Entry(cluster.run, only=("cluster",), full=False, quick=False),
    Entry(many_boards.run, only=("boards",), full=False, alone=True),
    Entry(idle.run, only=("fanout", "idle"), alone=True),
    Entry(reference.run, only=("fanout", "knee"), alone=True),
]
"""Every phase, in the order they run: those on the shared two-worker server first."""

GROUPS = {
    "fanout": "the 1,000-subscriber fan-out and saturation phases",
    "writes": "the write path (the idle single PATCH, store floor beside REST writes, batches)",
    "idle": "the idle connections on one worker",
    "rewind": "GET ?at= (the board at a past seq) over a 10,000-event history, beside the live GET",
    "boards": "10,000 boards with 2 subscribers each (--boards): idle CPU, memory and Redis"
    " subscriptions per worker, writes spread over them beside one board",
    "cluster": "the fan-out phases on a local 3-master Redis Cluster beside single Redis, raw"
    " publishes/s with 1 and 3 masters, which master carries which board channels",
    "knee": "5,000 subscribers at rising write rates (where latency turns up, and why:"
    " deliveries/s and CPU per delivery per rate)",
}
"""The `--only` choices (`Entry.only`)."""


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds (CI)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--only",
        choices=list(GROUPS),
        default=None,
        help="only " + "; or only ".join(GROUPS.values()),
    )
    for option, what in (
        ("--idle", "how many idle connections the idle phases hold (default 1000,10000)"),
        ("--boards", "how many boards the many-boards phase holds (default 10000)"),
    ):
        parser.add_argument(
            option,
            type=lambda text: [int(n) for n in text.split(",")],
            default=None,
            metavar="N,N",
            help=what,
        )
    return parser.parse_args()


def main() -> int:
    args = _arguments()
    raise_fd_limit()
    name = f"switchboard_bench_{uuid.uuid4().hex[:8]}"
    db = asyncio.run(database(name, True))
    context = Run(
        db,
        f"bench-{uuid.uuid4().hex[:8]}:",
        quick=args.quick,
        only=args.only,
        idle=args.idle,
        boards=args.boards,
    )
    try:
        phases = runner.run(PHASES, context)
    finally:
        asyncio.run(database(name, False))
    reference.relate(phases)
    result = report.document(phases, quick=args.quick)
    print(report.table(phases))
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
