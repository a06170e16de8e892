"""The `switchboard` command: serve, migrate and keys for the server, push, tail and demo
for shells.

Importing this must stay cheap: the client commands load only `switchboard_client`
(`cli/client.py`), the server commands import the server inside themselves
(`cli/server.py`), so `switchboard push --help` never loads FastAPI or SQLAlchemy
(`tests/test_cli.py` checks it).
"""

from __future__ import annotations

import typer

from switchboard.cli import client, server
from switchboard.cli.output import PLAIN

app = typer.Typer(
    help="Switchboard: live dashboards over REST, WebSocket and SSE.",
    no_args_is_help=True,
    **PLAIN,
)
app.command()(server.serve)
app.command()(server.migrate)
app.add_typer(server.keys_app, name="keys")
app.command()(client.push)
app.command()(client.tail)
app.command()(client.demo)
