"""A built wheel carries the migrations, and `migrate.alembic_config()` finds every
revision: in the checkout, and in the wheel's own files with no checkout in sight.
(`.ci/wheel-smoke` goes further: it installs the wheel in a fresh virtualenv and runs
`switchboard migrate` and `switchboard serve` from it.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from switchboard import web
from switchboard.store import migrate

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "migrations"
HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()

# Run by the Python of this test session with only the unpacked wheel in front of sys.path.
INSTALLED = """
import asyncio, json, sqlite3, sys
from alembic.script import ScriptDirectory
from switchboard.store import migrate

config = migrate.alembic_config()
script = ScriptDirectory.from_config(config)
asyncio.run(migrate.upgrade("sqlite+aiosqlite:///" + sys.argv[1]))
revision = sqlite3.connect(sys.argv[1]).execute("SELECT version_num FROM alembic_version")
print(json.dumps({
    "module": migrate.__file__,
    "location": config.get_main_option("script_location"),
    "versions": script.versions,
    "revision": revision.fetchone()[0],
}))
"""


def revision_files(versions: Path) -> set[str]:
    return {path.name for path in versions.glob("*.py")}


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built once per session from the checkout (a few seconds)."""
    uv = shutil.which("uv")
    assert uv is not None, "the wheel is built with uv (pip install uv)"
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [uv, "build", "--wheel", "--quiet", "--out-dir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (built,) = out.glob("switchboard_live-*.whl")
    return built


def test_the_wheel_carries_the_checkouts_migrations(wheel: Path) -> None:
    checkout = {
        path.relative_to(MIGRATIONS).as_posix(): path.read_bytes()
        for path in MIGRATIONS.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    prefix = "switchboard/migrations/"
    with zipfile.ZipFile(wheel) as archive:
        packaged = {
            name.removeprefix(prefix): archive.read(name)
            for name in archive.namelist()
            if name.startswith(prefix)
        }
    assert {"env.py", "script.py.mako"} < packaged.keys()
    assert revision_files(MIGRATIONS / "versions")
    assert packaged == checkout


def test_the_checkout_config_finds_every_revision() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert revision_files(Path(script.versions)) == revision_files(MIGRATIONS / "versions")
    assert script.get_current_head() == HEAD


def test_an_installed_wheel_finds_and_applies_every_revision(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    ran = subprocess.run(
        [sys.executable, "-c", INSTALLED, str(tmp_path / "installed.db")],
        cwd=tmp_path,  # outside the checkout
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    found = json.loads(ran.stdout)
    assert Path(found["module"]).is_relative_to(site)
    assert found["location"] == migrate.PACKAGED
    versions = Path(found["versions"])
    assert versions.is_relative_to(site)
    assert revision_files(versions) == revision_files(MIGRATIONS / "versions")
    assert found["revision"] == HEAD


def test_the_wheel_carries_the_javascript_client(wheel: Path) -> None:
    """One client: the wheel's /static/switchboard.js is clients/js/src/switchboard.js."""
    with zipfile.ZipFile(wheel) as archive:
        packaged = archive.read("switchboard/web/static/switchboard.js")
    assert packaged == (ROOT / "clients" / "js" / "src" / "switchboard.js").read_bytes()


def test_a_checkout_serves_the_javascript_clients_source() -> None:
    """No copy in the repository: the checkout serves the npm package's source."""
    assert not web.CLIENT_PACKAGED.exists()
    assert web.client_script() == ROOT / "clients" / "js" / "src" / "switchboard.js"
