"""What the benchmark reads from Linux's /proc: CPU seconds and resident memory of a
process, its children, the whole machine's busy time; and the open-file limit that
thousands of sockets need."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def machine_cpu() -> float:
    """Busy CPU seconds of the whole machine (all cores) since boot, from /proc/stat:
    user, nice, system, irq and softirq. Over a write phase it covers what per-process
    readings cannot: PostgreSQL's backends (a floor writer's exits with its connection)
    and the kernel's network work."""
    user, nice, system, _idle, _iowait, irq, softirq = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]
    )
    return (user + nice + system + irq + softirq) / TICK


class CpuSplit:
    """Where a write phase's CPU went, per write: the whole machine, the server's workers
    (`server_cpu`, e.g. `Server.cpu`), this process (the load generator, or the floor's
    asyncpg writers), and the rest (PostgreSQL, Redis, the kernel's network work,
    anything else running)."""

    def __init__(self, server_cpu: Callable[[], float]) -> None:
        self.server_cpu = server_cpu
        self.start = (machine_cpu(), server_cpu(), time.process_time())

    def per_write(self, writes: int) -> dict[str, float]:
        machine, server, own = (
            now - then
            for now, then in zip(
                (machine_cpu(), self.server_cpu(), time.process_time()), self.start, strict=True
            )
        )
        split = {
            "machine": machine,
            "server": server,
            "bench_process": own,
            "rest": machine - server - own,
        }
        return {k: round(v / writes * 1000, 3) for k, v in split.items()} if writes else {}


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def raise_fd_limit() -> None:
    """The soft open-file limit up to the hard one: every process holding sockets calls it."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
