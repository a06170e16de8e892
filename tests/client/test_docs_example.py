"""docs/python-client.md's complete example runs, as written, against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import ADMIN_KEY, ServerProcess

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "python-client.md"


def example(heading: str) -> str:
    """The first Python block under `heading` in the guide."""
    section = GUIDE.read_text(encoding="utf-8").split(f"## {heading}\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None
    return found[1]


def test_the_complete_example_runs(process: ServerProcess, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example("A complete example"))
    for snapshot_seq in (6, 13):  # the second run finds the board there already
        lines = run(script, process)
        assert lines == [
            "history: ['widget.updated', 'widgets.updated', 'widget.points']",
            f"snapshot at seq {snapshot_seq} ",
            f"seq {snapshot_seq} cpu = 71",
            f"seq {snapshot_seq + 1} cpu = 80",
        ]


def test_the_live_example_runs(process: ServerProcess, tmp_path: Path) -> None:
    script = tmp_path / "live.py"
    script.write_text(example("A live example"))
    for _ in range(2):  # the second run finds the boards there already
        assert run(script, process) == [
            "state: connecting ",
            "state: connected ",
            "board:web snapshot",
            "board:db snapshot",
            "board:db widget.updated down",
            "state: closed ",
            "watching web: 1",
            "joined: [1]",
            "left: [0]",
        ]


def run(script: Path, process: ServerProcess) -> list[str]:
    """`script` run against `process` with the admin key; the lines it printed."""
    env = {**os.environ, "SWITCHBOARD_URL": process.base_url, "SWITCHBOARD_TOKEN": ADMIN_KEY}
    ran = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    return ran.stdout.splitlines()
