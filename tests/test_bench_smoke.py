"""The benchmark's smoke run (seconds): it works end to end, loses nothing, and its output is
well formed. No timing is asserted here; the figures are the benchmark's business."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
    reference = next(p for name, p in phases.items() if name.startswith("reference"))
    assert reference["server_cpu_us_per_delivery"] > 0
    assert result["machine"]["cpus"] >= 1
