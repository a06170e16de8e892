"""The npm package `switchboard-live-client` (clients/js), built and installed as a user
would: a copy of clients/js with its locked devDependencies (`npm ci`, so the checkout
stays clean), the tarball `npm pack` makes of it, and a scratch project that installed
that tarball and `ws` from the registry."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "clients" / "js"
WS = "ws@8.18.3"
"""The WebSocket implementation a Node 20 user installs beside the client."""


def npm(*args: str, cwd: Path, timeout: float = 300) -> str:
    """Run npm in `cwd`; its output, or a failure that shows it."""
    npm_path = shutil.which("npm")
    assert npm_path is not None, "the JavaScript client's tests need Node 20 and npm"
    done = subprocess.run(
        [npm_path, *args, "--no-audit", "--no-fund"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, (
        f"npm {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clients/js copied without its node_modules, after `npm ci`."""
    copy = tmp_path_factory.mktemp("js") / "package"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("node_modules", "*.tgz"))
    npm("ci", cwd=copy)
    return copy


@pytest.fixture(scope="session")
def tarball(package: Path) -> Path:
    name = npm("pack", "--silent", cwd=package).strip().splitlines()[-1]
    return package / name


@pytest.fixture(scope="session")
def scratch(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Node project that installed the tarball and `ws`, nothing else."""
    project = tmp_path_factory.mktemp("scratch")
    manifest = {"name": "scratch", "private": True, "type": "module"}
    (project / "package.json").write_text(json.dumps(manifest))
    npm("install", str(tarball), WS, cwd=project)
    return project
