"""The `switchboard` command: serve, migrate, and a small client for shells."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer
import uvicorn

from switchboard.config import Settings
from switchboard.errors import AppError
from switchboard.logs import logging_config
from switchboard.store.db import Database

if TYPE_CHECKING:
    from switchboard_client import SwitchboardError

app = typer.Typer(
    help="Switchboard: live dashboards over REST, WebSocket and SSE.", no_args_is_help=True
)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Run the server (the embedded SQLite store migrates itself)."""
    settings = Settings()
    if workers > 1 and (settings.is_sqlite or settings.is_memory_broker):
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
        **server_options(settings),
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


@app.command()
def migrate() -> None:
    """Apply the database migrations to SWITCHBOARD_DATABASE_URL."""
    from switchboard.store import migrate as migrations

    url = Settings().database_url
    asyncio.run(migrations.upgrade(url))
    typer.echo("database is at the latest revision")


keys_app = typer.Typer(help="API keys in the configured store.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


async def _open_store() -> Database:
    from switchboard.store import migrate as migrations

    settings = Settings()
    if settings.is_sqlite:
        await migrations.upgrade(settings.database_url)
    return Database(settings.database_url)


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
    from switchboard.store import keys

    if role not in {r.value for r in Role}:
        raise typer.BadParameter("must be admin, write or read", param_hint="--role")

    async def run() -> str:
        db = await _open_store()
        try:
            async with db.transaction() as tx:
                new = await keys.create_key(tx, role=role, boards=board or None, name=name)
            return new.secret
        finally:
            await db.dispose()

    typer.echo(asyncio.run(run()))


@keys_app.command("list")
def keys_list() -> None:
    """List keys (ids, roles, boards; never secrets)."""
    from switchboard.store import keys

    async def run() -> None:
        db = await _open_store()
        try:
            async with db.read() as session:
                for key in await keys.list_keys(session):
                    state = "revoked" if key.revoked_at else "active"
                    scope = ",".join(key.boards) if key.boards is not None else "*"
                    typer.echo(f"{key.id}\t{key.role}\t{scope}\t{state}\t{key.name}")
        finally:
            await db.dispose()

    asyncio.run(run())


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument(help="The key's id.")]) -> None:
    """Revoke a key; running workers stop accepting it within SWITCHBOARD_KEY_CACHE_TTL."""
    from switchboard.store import keys

    async def run() -> None:
        db = await _open_store()
        try:
            async with db.transaction() as tx:
                await keys.revoke_key(tx, key_id)
        finally:
            await db.dispose()

    try:
        asyncio.run(run())
    except AppError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {key_id}")


@app.command()
def demo(
    url: Annotated[str, typer.Option(envvar="SWITCHBOARD_URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(envvar="SWITCHBOARD_TOKEN")] = None,
    board: Annotated[str, typer.Option(help="Slug of the demo board.")] = "demo",
    interval: Annotated[float, typer.Option(help="Seconds between changes.")] = 1.0,
    iterations: Annotated[int | None, typer.Option(help="Stop after this many.")] = None,
) -> None:
    """Fill a public board with lively sample data (run it beside `switchboard serve`)."""
    from switchboard import demo as sample
    from switchboard.store import keys

    async def main() -> None:
        credential = token
        if credential is None:  # make a key of our own, limited to the demo board
            db = await _open_store()
            try:
                async with db.transaction() as tx:
                    new = await keys.create_key(tx, role="write", boards=[board], name="demo")
                credential = new.secret
            finally:
                await db.dispose()
        await sample.run(
            url, credential, board=board, interval=interval, iterations=iterations, say=typer.echo
        )

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


def _value(raw: str) -> Any:
    """A JSON value if it parses as one (`42`, `"up"`, `null`), else the plain string."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def _fail(exc: SwitchboardError) -> typer.Exit:
    """Print a client failure as the server's error shape, on stderr; the exit to raise."""
    body = {"error": {"code": exc.code, "message": exc.message}}
    typer.echo(orjson.dumps(body).decode(), err=True)
    return typer.Exit(1)


@app.command()
def push(
    slug: Annotated[str, typer.Argument(help="Board slug.")],
    key: Annotated[str, typer.Argument(help="Widget key.")],
    value: Annotated[str, typer.Argument(help="New value, as JSON (a bare word is a string).")],
    url: Annotated[str, typer.Option(envvar="SWITCHBOARD_URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(envvar="SWITCHBOARD_TOKEN")] = None,
) -> None:
    """Set a widget's value (retried, applied once, if the server is briefly unreachable)."""
    from switchboard_client import Client, SwitchboardError

    try:
        with Client(url, token=token) as sb:
            widget = sb.set(slug, key, _value(value))
    except SwitchboardError as exc:
        raise _fail(exc) from None
    typer.echo(orjson.dumps(widget).decode())


@app.command()
def tail(
    slug: Annotated[str, typer.Argument(help="Board slug.")],
    since: Annotated[int | None, typer.Option(help="Start after this seq.")] = None,
    url: Annotated[str, typer.Option(envvar="SWITCHBOARD_URL")] = "http://127.0.0.1:8000",
    token: Annotated[str | None, typer.Option(envvar="SWITCHBOARD_TOKEN")] = None,
) -> None:
    """Print a board's snapshot and events as JSON lines, reconnecting with `since`."""
    from switchboard_client import AsyncClient, SwitchboardError

    async def run() -> None:
        async with AsyncClient(url, token=token) as sb:
            async for frame in sb.watch(slug, since=since):
                typer.echo(orjson.dumps(frame).decode())

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run())
    except SwitchboardError as exc:
        raise _fail(exc) from None


if __name__ == "__main__":
    app()
