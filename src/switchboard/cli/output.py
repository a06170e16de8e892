"""How every command reports: results on stdout, one plain line per problem on stderr."""

from __future__ import annotations

import typer

USAGE = 2
"""Exit status for what the user must change before trying again (bad input, settings)."""


def note(line: str) -> None:
    """Tell the user something about the run (stderr, so stdout stays the result)."""
    typer.echo(line, err=True)


def fail(line: str, *, status: int = 1) -> typer.Exit:
    """Print `line` as the command's one error line; the exit to raise."""
    typer.echo(f"error: {line}", err=True)
    return typer.Exit(status)
