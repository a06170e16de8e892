"""The layering holds: each folder imports only what sits below it, and no import
climbs back up (no cycle, type-only imports included).

realtime/ serves connections without knowing the REST app (no `state`, no `api`), and api/
takes from it only the SSE response, the protocol's limits and the AsyncAPI document;
auth/ decides who may do what without knowing how connections are held (nothing from
realtime/); the store and the brokers know neither. `names.py` (slugs, channels) imports
nothing of the package and `resources.py` (the JSON shapes) nothing of the store: both
sit below every folder that uses them. Inside realtime/ only `wire.py`, uvicorn's
protocol, imports uvicorn, and nothing imports it (the server loads it by path), so the
hub and the connections depend on the bytes of a frame (`framing.py`), not on a server.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "switchboard"

ABOVE_STORE = ("switchboard.realtime", "switchboard.auth", "switchboard.api", "switchboard.state")
FORBIDDEN = {
    "realtime": ("switchboard.state", "switchboard.api", "switchboard.app"),
    "auth": ("switchboard.realtime", "switchboard.state", "switchboard.api", "switchboard.app"),
    "store": ABOVE_STORE,
    "broker": ABOVE_STORE,
    "names.py": ("switchboard",),
    "resources.py": ("switchboard.store", *ABOVE_STORE, "switchboard.app"),
}
"""A folder (or one module) → the modules it must not import, by prefix."""


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at run time or for type checking, as written."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


@pytest.mark.parametrize("place", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(place: str) -> None:
    files = [SRC / place] if place.endswith(".py") else sorted((SRC / place).glob("*.py"))
    assert all(path.is_file() for path in files)
    assert files
    crossings = [
        f"{path.name} imports {module}"
        for path in files
        for module in sorted(imports(path))
        if module.startswith(FORBIDDEN[place])
    ]
    assert crossings == []


API_REACHES_INTO_REALTIME = {
    "switchboard.realtime.sse",  # the SSE route returns its `EventStream`
    "switchboard.realtime.protocol",  # limits (`MAX_SEQ`)
    "switchboard.realtime.asyncapi",  # the served AsyncAPI document
}


def test_api_reaches_into_realtime_only_for_the_stream_limits_and_document() -> None:
    reached = {
        module
        for path in (SRC / "api").glob("*.py")
        for module in imports(path)
        if module.startswith("switchboard.realtime")
    }
    assert reached <= API_REACHES_INTO_REALTIME


def test_only_wire_imports_uvicorn_and_nothing_imports_wire() -> None:
    realtime = sorted((SRC / "realtime").glob("*.py"))
    uvicorn = [p.name for p in realtime if any(m.split(".")[0] == "uvicorn" for m in imports(p))]
    assert uvicorn == ["wire.py"]
    importers = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if any(m == "switchboard.realtime.wire" for m in imports(path))
        or ("switchboard.realtime" in imports(path) and _names_from(path, "wire"))
    ]
    assert importers == []


def _names_from(path: Path, name: str) -> bool:
    """Whether `path` says `from switchboard.realtime import <name>`."""
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "switchboard.realtime"
        and any(alias.name == name for alias in node.names)
        for node in ast.walk(ast.parse(path.read_text()))
    )


def modules(root: Path) -> dict[str, Path]:
    """The package's modules by dotted name (a package by its own name, for `__init__`)."""
    found: dict[str, Path] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module → the package's modules it imports (run time or type-only, relative imports
    resolved). `from a.b import c` leads to `a.b.c` when it is a module and to `a.b`,
    whose `__init__` runs either way; an import of the module's own package is left out
    (it runs first anyway, and is no arrow back)."""
    names = modules(root)
    graph: dict[str, set[str]] = {name: set() for name in names}
    for name, path in names.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            for target in targets:
                while target and target not in names:
                    target = target.rpartition(".")[0]
                if target and target != name and not name.startswith(f"{target}."):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def test_no_import_cycles() -> None:
    graph = import_graph(SRC)
    assert len(graph) > 50  # the package was read, its imports too
    assert sum(map(len, graph.values())) > 200
    assert cycles(graph) == []


def test_the_cycle_finder_sees_type_only_and_relative_cycles(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import B\n",
        "b.py": "from pkg.sub import c\n",
        "sub/__init__.py": "",
        "sub/c.py": "from .. import a\n",
        "d.py": "import pkg.a\nfrom pkg import sub\n",  # into the cycle, not part of it
        "sub/e.py": "from pkg.sub import c\nfrom . import c as again\n",
    }
    for name, text in files.items():
        (package / name).write_text(text)
    graph = import_graph(package)
    assert graph["pkg.sub.c"] == {"pkg.a"}  # `..` resolved; its own ancestors are no arrow
    assert graph["pkg.sub.e"] == {"pkg.sub.c"}
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.sub.c"]]
    (package / "a.py").write_text("")
    assert cycles(import_graph(package)) == []
