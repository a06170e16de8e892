"""How every command reports: results on stdout, one plain line per problem on stderr."""

from __future__ import annotations

from typing import Any

import typer

USAGE = 2
"""Exit status for what the user must change before trying again (bad input, settings)."""
PLAIN: dict[str, Any] = {"rich_markup_mode": None, "pretty_exceptions_enable": False}
"""Every `typer.Typer`'s: click's plain help and errors. Typer's rich formatting imports
rich and markdown-it, about 0.6 s, more than the rest of `push --help` together."""


def note(line: str) -> None:
    """Tell the user something about the run (stderr, so stdout stays the result)."""
    typer.echo(line, err=True)


def fail(line: str, *, status: int = 1) -> typer.Exit:
    """Print `line` as the command's one error line; the exit to raise."""
    typer.echo(f"error: {line}", err=True)
    return typer.Exit(status)
