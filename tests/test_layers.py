"""The layering holds: each folder imports only what sits below it.

realtime/ serves connections without knowing the REST app (no `state`, no `api`);
auth/ decides who may do what without knowing how connections are held (nothing from
realtime/); the store and the brokers know neither.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "switchboard"

FORBIDDEN = {
    "realtime": ("switchboard.state", "switchboard.api", "switchboard.app"),
    "auth": ("switchboard.realtime", "switchboard.state", "switchboard.api", "switchboard.app"),
    "store": ("switchboard.realtime", "switchboard.auth", "switchboard.api", "switchboard.state"),
    "broker": ("switchboard.realtime", "switchboard.auth", "switchboard.api", "switchboard.state"),
}


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at run time or for type checking."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_a_folder_imports_nothing_above_it(folder: str) -> None:
    files = sorted((SRC / folder).glob("*.py"))
    assert files
    crossings = [
        f"{path.name} imports {module}"
        for path in files
        for module in sorted(imports(path))
        if module.startswith(FORBIDDEN[folder])
    ]
    assert crossings == []
