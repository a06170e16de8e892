"""`serve`, `migrate` and `keys`: the commands that run or change the server's store.

Each imports the server (FastAPI, SQLAlchemy, uvicorn, pydantic-settings) inside the
command, so `switchboard push --help` and the other client commands never load it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from switchboard.cli.output import PLAIN, USAGE, fail, note
from switchboard.database_url import shown

if TYPE_CHECKING:
    from switchboard.config import Settings
    from switchboard.store.db import Database

T = TypeVar("T")
_DRIVER_PREFIX = re.compile(r"^\([\w.]+\)\s*")


def settings() -> Settings:
    """The environment's settings, or exit 2 with one line per bad variable."""
    from switchboard.config import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        for problem in exc.problems:
            note(f"error: {problem}")
        raise typer.Exit(USAGE) from None


class StoreFailed(Exception):
    """The store could not be reached or used; the message names it and says why."""


@contextlib.contextmanager
def store_errors(url: str) -> Iterator[None]:
    """Turn the store's connection and database errors into one `StoreFailed` line."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (OSError, SQLAlchemyError) as exc:
        lines = str(exc).strip().splitlines() or [type(exc).__name__]
        reason = _DRIVER_PREFIX.sub("", lines[0])
        raise StoreFailed(f"cannot use database {shown(url)}: {reason}") from None


def on_store(url: str, work: Coroutine[Any, Any, T]) -> T:
    """Run `work` against the store at `url`; a store failure exits with one line."""
    try:
        with store_errors(url):
            return asyncio.run(work)
    except StoreFailed as exc:
        raise fail(str(exc)) from None


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the server (the embedded SQLite store migrates itself)."""
    import uvicorn

    config = settings()
    if workers > 1 and (config.is_sqlite or config.is_memory_broker):
        raise typer.BadParameter(
            "several workers need PostgreSQL and Redis: set SWITCHBOARD_DATABASE_URL "
            "and SWITCHBOARD_BROKER_URL (the embedded default is one process)",
            param_hint="--workers",
        )
    if workers > 1:
        share_metrics()
    uvicorn.run(
        "switchboard.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        **server_options(config),
    )


WORKER_START_TIMEOUT = 30
"""Seconds uvicorn's supervisor waits for a worker to answer its health ping (while
the worker starts, and in the supervisor's periodic check) before replacing it."""


def share_metrics() -> None:
    """Put prometheus_client in multiprocess mode for the workers uvicorn is about to spawn
    (fresh interpreters: they read the variable when they import it), in a directory of
    this start's own, removed at exit; this process imports no metric, so writes none."""
    directory = tempfile.mkdtemp(prefix="switchboard-metrics-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory


def server_options(settings: Settings) -> dict[str, Any]:
    """How uvicorn runs Switchboard (also used by the tests' in-process servers).

    websockets-sansio measured fastest per frame on this machine (`WireProtocol` adds
    the fan-out fast path to it); per-message compression costs memory per connection and
    the fast path (`Settings.ws_compression`), so it is off by default; frames beyond
    `ws_max_message_bytes` close the connection with 1009.
    """
    from switchboard.logs import logging_config

    return {
        "loop": "uvloop",
        "http": "httptools",
        "ws": "switchboard.realtime.wire:WireProtocol",
        "ws_max_size": settings.ws_max_message_bytes,
        "ws_per_message_deflate": settings.ws_compression,
        "ws_ping_interval": settings.ws_ping_interval,
        "ws_ping_timeout": settings.ws_ping_timeout,
        "log_level": settings.log_level,
        "log_config": logging_config(settings.log_level, json=settings.log_json),
        "timeout_graceful_shutdown": settings.drain_timeout,
        # uvicorn's default 5 s restarted workers still importing on a loaded machine.
        "timeout_worker_healthcheck": WORKER_START_TIMEOUT,
        "proxy_headers": True,
    }


def migrate() -> None:
    """Apply the database migrations to SWITCHBOARD_DATABASE_URL."""
    from switchboard.store import migrate as migrations

    url = store_url()
    on_store(url, migrations.upgrade(url))
    typer.echo("database is at the latest revision")


keys_app = typer.Typer(
    help="API keys in the configured store.",
    no_args_is_help=True,
    **PLAIN,
)


def store_url() -> str:
    """The configured store's URL, after saying on stderr which store the command acts on
    (stdout stays the command's result: `keys create` prints only the secret)."""
    url = settings().database_url
    note(f"database: {shown(url)}")
    return url


async def open_store(url: str) -> Database:
    """The store at `url`; an SQLite one is migrated first (it has no `migrate` step)."""
    from switchboard.store import migrate as migrations
    from switchboard.store.db import Database

    if url.startswith("sqlite"):
        await migrations.upgrade(url)
    return Database(url)


async def create_key(url: str, *, role: str, boards: list[str] | None, name: str) -> str:
    """Make an API key in the store at `url`; its secret (shown this once)."""
    from switchboard.store import keys

    db = await open_store(url)
    try:
        async with db.transaction() as tx:
            new = await keys.create_key(tx, role=role, boards=boards, name=name)
        return new.secret
    finally:
        await db.dispose()


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin, write or read.")],
    board: Annotated[
        list[str] | None, typer.Option(help="Limit the key to this board (repeatable).")
    ] = None,
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
) -> None:
    """Create an API key and print it (the only time it is shown)."""
    from switchboard.auth.principal import Role

    if role not in {r.value for r in Role}:
        raise typer.BadParameter("must be admin, write or read", param_hint="--role")
    url = store_url()
    typer.echo(on_store(url, create_key(url, role=role, boards=board or None, name=name)))


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, roles, boards; never secrets)."""
    from switchboard.store import keys

    url = store_url()

    async def run() -> None:
        db = await open_store(url)
        try:
            async with db.read() as session:
                for key in await keys.list_keys(session):
                    state = "revoked" if key.revoked_at else "active"
                    scope = ",".join(key.boards) if key.boards is not None else "*"
                    typer.echo(f"{key.id}\t{key.role}\t{scope}\t{state}\t{key.name}")
        finally:
            await db.dispose()

    on_store(url, run())


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key; running workers stop accepting it within SWITCHBOARD_KEY_CACHE_TTL."""
    from switchboard.errors import AppError
    from switchboard.store import keys

    url = store_url()

    async def run() -> None:
        db = await open_store(url)
        try:
            async with db.transaction() as tx:
                await keys.revoke_key(tx, key_id)
        finally:
            await db.dispose()

    try:
        on_store(url, run())
    except AppError as exc:
        raise fail(exc.message) from None
    typer.echo(f"revoked {key_id}")
