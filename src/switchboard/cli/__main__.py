"""`python -m switchboard.cli`, as the `switchboard` command."""

from switchboard.cli import app

app()
