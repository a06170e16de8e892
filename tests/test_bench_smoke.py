"""The benchmark's smoke run (seconds): it works end to end, loses nothing, and its output is
well formed. No timing is asserted here; the figures are the benchmark's business. Also
the phase registry: every phase module is registered, and each command line picks the
phases bench/README.md says."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from bench import phases
from bench.__main__ import GROUPS, PHASES

ROOT = Path(__file__).resolve().parents[1]


def test_bench_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| phase |" in run.stdout
    result = json.loads(out.read_text())
    phases = {p["name"]: p for p in result["phases"]}
    fan = next(p for name, p in phases.items() if name.startswith("fan-out"))
    assert fan["writes"] > 0
    assert (fan["lost"], fan["duplicated"], fan["out_of_order"]) == (0, 0, 0)
    assert fan["deliveries"] == fan["expected"] == fan["writes"] * fan["subscribers"]
    assert fan["server_cpu_us_per_delivery"] > 0
    idle = next(p for name, p in phases.items() if name.startswith("idle connections"))
    assert idle["extra"]["kib_per_connection"] > 0
    spread = next(
        p for name, p in phases.items() if name.startswith("boards:") and "spread" in name
    )
    assert (spread["lost"], spread["duplicated"], spread["out_of_order"]) == (0, 0, 0)
    assert spread["deliveries"] == spread["expected"] == spread["writes"] * 2
    assert len(spread["extra"]["idle_cpu_pct_per_worker"]) == 2
    assert spread["extra"]["redis_subscriptions_unmatched"] == 0
    reference = next(p for name, p in phases.items() if name.startswith("reference"))
    assert reference["server_cpu_us_per_delivery"] > 0
    assert result["machine"]["cpus"] >= 1


def test_every_phase_module_is_registered() -> None:
    """A module of bench/phases/ with a `run` is in `PHASES`, once (floor.py has none: REST
    writes run it), and every `--only` group it names is a choice of the command line."""
    registered = [entry.run.__module__ for entry in PHASES]
    modules = [f"bench.phases.{m.name}" for m in pkgutil.iter_modules(phases.__path__)]
    runnable = [m for m in modules if hasattr(sys.modules.get(m), "run")]
    assert sorted(registered) == sorted(runnable)
    assert {group for entry in PHASES for group in entry.only} == set(GROUPS)


@pytest.mark.parametrize(
    ("quick", "only", "chosen"),
    [
        (False, None, "fanout saturation single writes batch rewind idle reference"),
        (True, None, "fanout single writes batch rewind many_boards idle reference"),
        (False, "fanout", "fanout saturation idle reference"),
        (False, "writes", "single writes batch"),
        (False, "idle", "idle"),
        (False, "knee", "knee reference"),
        (True, "idle", "idle"),
        (True, "writes", "single writes batch"),
        (False, "rewind", "rewind"),
        (True, "rewind", "rewind"),
        (False, "boards", "many_boards"),
        (True, "boards", "many_boards"),
        (False, "cluster", "cluster"),
        (True, "cluster", ""),
    ],
)
def test_the_command_line_picks_the_phases(quick: bool, only: str | None, chosen: str) -> None:
    picked = [e.run.__module__.rsplit(".", 1)[1] for e in PHASES if e.chosen(quick, only)]
    assert picked == chosen.split()
