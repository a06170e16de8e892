"""docs/python-client.md's complete example runs, as written, against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import ADMIN_KEY, ServerProcess

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "python-client.md"


def complete_example() -> str:
    section = GUIDE.read_text(encoding="utf-8").split("## A complete example", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None
    return found[1]


def test_the_complete_example_runs(process: ServerProcess, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(complete_example())
    env = {**os.environ, "SWITCHBOARD_URL": process.base_url, "SWITCHBOARD_TOKEN": ADMIN_KEY}
    for snapshot_seq in (6, 13):  # the second run finds the board there already
        ran = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 0, ran.stderr
        lines = ran.stdout.splitlines()
        assert lines == [
            "history: ['widget.updated', 'widgets.updated', 'widget.points']",
            f"snapshot at seq {snapshot_seq} ",
            f"seq {snapshot_seq} cpu = 71",
            f"seq {snapshot_seq + 1} cpu = 80",
        ]
