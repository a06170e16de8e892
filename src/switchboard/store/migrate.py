"""Apply Alembic migrations from inside a running program.

The embedded server migrates its SQLite file at startup, inside its event
loop, so Alembic runs on a connection we open (`conn.run_sync`) instead of
starting a loop of its own. `switchboard migrate` and the tests use the same
path; the `alembic` command line works too (see `migrations/env.py`).

The migrations travel inside the package: a wheel carries the checkout's
`migrations/` as `switchboard/migrations` (pyproject.toml), so an installed
Switchboard migrates without a checkout or an `alembic.ini`. In a checkout
(an editable install) the package has no such folder and the top-level
`migrations/`, the one source of truth, is used as it is.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import create_async_engine

# Alembic reads `package:path` as a package resource (importlib.resources).
PACKAGED = "switchboard:migrations"
CHECKOUT = Path(__file__).resolve().parents[3] / "migrations"


def script_location() -> str:
    """Where the Alembic environment is: in the installed package, else in the checkout."""
    if (resources.files("switchboard") / "migrations" / "env.py").is_file():
        return PACKAGED
    if (CHECKOUT / "env.py").is_file():
        return str(CHECKOUT)
    raise RuntimeError(
        f"migrations not found: neither {PACKAGED} nor {CHECKOUT} (a broken installation?)"
    )


def alembic_config(url: str | None = None) -> Config:
    """The project's Alembic configuration, built in code (no `alembic.ini` needed),
    pointed at `url` when given."""
    config = Config()
    config.set_main_option("script_location", script_location())
    if url is not None:
        config.attributes["url"] = url
    return config


async def _run(url: str, upgrade: bool, revision: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    config = alembic_config(url)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        if upgrade:
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)

    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision`."""
    await _run(url, True, revision)


async def downgrade(url: str, revision: str) -> None:
    """Take the database at `url` down to `revision` (`base` removes every table)."""
    await _run(url, False, revision)
