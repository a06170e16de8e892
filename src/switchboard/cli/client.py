"""`push`, `tail` and `demo`: the commands that talk to a running server.

They load `switchboard_client` (httpx, websockets), typer and orjson, never the server's
packages, so they start in a fraction of the time `serve` takes; `demo` imports the
store only to make its key (`switchboard.demo`). The client itself is imported when a
command runs, not when the command line is parsed: `--help` and a usage error need
neither httpx nor websockets (httpx alone, importing its own command line when click is
installed, as it is beside typer, is most of the client's import time).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import sys
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from switchboard.cli.output import USAGE, fail

if TYPE_CHECKING:
    from switchboard_client import SwitchboardError

Url = Annotated[
    str,
    typer.Option(envvar="SWITCHBOARD_URL", help="The server; http:// is assumed without a scheme."),
]
Token = Annotated[
    str | None, typer.Option(envvar="SWITCHBOARD_TOKEN", help="API key (or viewer token).")
]
DEFAULT_URL = "http://127.0.0.1:8000"
JSON_STARTS = tuple('{["-+.0123456789')
"""First characters of a value that was meant as JSON (an object, array, string, number):
if it does not parse, it is a mistake, not a word."""


def push(
    slug: Annotated[str, typer.Argument(help="Board slug.")],
    key: Annotated[str, typer.Argument(help="Widget key.")],
    value: Annotated[
        str,
        typer.Argument(
            help="The new value as JSON: 42, 3.5, true, null, '\"text\"', '[1, 2]', "
            "'{\"a\": 1}'. Anything else is a string (ok, down), unless it starts like "
            'JSON (with { [ " a digit, -, + or .): then it must parse, or the push is refused.'
        ),
    ],
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Set a widget's value (retried, applied once, if the server is briefly unreachable)."""
    from switchboard_client import Client, SwitchboardError

    parsed = json_value(value)
    address = _address(url)
    report_retries("push")
    try:
        with Client(address, token=token) as sb:
            widget = sb.set(slug, key, parsed)
    except SwitchboardError as exc:
        raise fail(problem(exc, address, token)) from None
    typer.echo(orjson.dumps(widget).decode())


def tail(
    slug: Annotated[str, typer.Argument(help="Board slug.")],
    since: Annotated[int | None, typer.Option(help="Start after this seq.")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Print a board's snapshot and events as JSON lines, reconnecting with `since`
    (each reconnection attempt is reported on stderr)."""
    from switchboard_client import AsyncClient

    address = _address(url)

    async def run() -> None:
        async with AsyncClient(address, token=token) as sb:
            async for frame in sb.watch(slug, since=since):
                typer.echo(orjson.dumps(frame).decode())

    report_retries("tail")
    _run(run(), address, token)


def demo(
    url: Url = DEFAULT_URL,
    token: Token = None,
    board: Annotated[str, typer.Option(help="Slug of the demo board.")] = "demo",
    interval: Annotated[float, typer.Option(help="Seconds between changes.")] = 1.0,
    iterations: Annotated[int | None, typer.Option(help="Stop after this many.")] = None,
) -> None:
    """Fill a public board with lively sample data; run it where `switchboard serve` runs.

    Without a token it uses a write key of its own for the board, made once in the
    server's store (SWITCHBOARD_DATABASE_URL; the SQLite file must exist) and kept in
    $XDG_STATE_HOME/switchboard/demo-keys.json (mode 0600), reused while accepted."""
    from switchboard import demo as sample

    address = _address(url)
    report_retries("demo")
    run = sample.start(
        address, token, board=board, interval=interval, iterations=iterations, say=typer.echo
    )
    try:
        _run(run, address, token)
    except sample.DemoFailed as exc:
        raise fail(str(exc)) from None


def json_value(raw: str) -> Any:
    """`raw` as JSON, or as a plain string if it does not start like JSON (`JSON_STARTS`);
    exits with one line when it starts like JSON and does not parse."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if raw.lstrip().startswith(JSON_STARTS):
            raise fail(
                f"VALUE {raw} is not valid JSON ({exc}); to send it as text, "
                f"pass it quoted: {shlex.quote(orjson.dumps(raw).decode())}",
                status=USAGE,
            ) from None
        return raw


def problem(exc: SwitchboardError, url: str, token: str | None) -> str:
    """One line for a failed call: what went wrong, and where."""
    from switchboard_client import ConnectionFailed, Forbidden, Unauthorized

    if isinstance(exc, ConnectionFailed):
        return f"cannot reach {url}: {_reason(exc.__cause__)}"
    if isinstance(exc, Unauthorized):
        if token is None:
            return f"the server at {url} wants a key: set SWITCHBOARD_TOKEN or pass --token"
        return f"the server at {url} refused the key ({exc.code}: {exc.message})"
    if isinstance(exc, Forbidden):
        return f"the key may not do this on {url} ({exc.code}: {exc.message})"
    return f"{exc.code}: {exc.message}"


def report_retries(command: str) -> None:
    """Show the client's retry lines (INFO) on stderr, short: a waiting command says why."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{command}: %(message)s"))
    logger = logging.getLogger("switchboard_client")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _address(url: str) -> str:
    from switchboard_client.urls import server_url

    try:
        return server_url(url)
    except ValueError as exc:
        raise fail(f"--url / SWITCHBOARD_URL {exc}", status=USAGE) from None


def _run(main: Coroutine[Any, Any, Any], url: str, token: str | None) -> None:
    """Run until done or Ctrl-C; a client failure becomes one line and status 1."""
    from switchboard_client import SwitchboardError

    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main)
    except SwitchboardError as exc:
        raise fail(problem(exc, url, token)) from None


def _reason(cause: BaseException | None) -> str:
    """The transport failure in a few words ("connection refused", "no answer within …")."""
    from switchboard_client.aio import DEFAULT_TIMEOUT
    from switchboard_client.states import describe

    return describe(cause, DEFAULT_TIMEOUT) if cause is not None else "no answer"
