"""The store's URL without the store: its default, its check, how to show it, its file.

Standard library only, so commands that merely name the database (`switchboard demo`,
the lines `keys` and `migrate` print) load neither SQLAlchemy nor pydantic.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./switchboard.db"
ENVIRONMENT = "SWITCHBOARD_DATABASE_URL"
DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")
"""The stores Switchboard runs on, as SQLAlchemy names their async drivers."""


def check(url: str) -> str:
    """`url` if Switchboard can use it; a ValueError saying what to write instead."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in DRIVERS:
        raise ValueError(
            "must be sqlite+aiosqlite:///path/to/file.db or "
            "postgresql+asyncpg://user:password@host:5432/name"
        )
    return url


def from_environment() -> str:
    """The URL the server started here would use (the variable, or the embedded default)."""
    return os.environ.get(ENVIRONMENT) or DEFAULT_DATABASE_URL


def sqlite_file(url: str) -> Path | None:
    """The absolute path of an SQLite store's file (relative paths are from the working
    directory, as the server opens them); None for other stores and in-memory SQLite."""
    if not url.startswith("sqlite") or ":///" not in url:
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    return None if path in {"", ":memory:"} else Path(path).absolute()


def shown(url: str) -> str:
    """`url` as it may be printed and used as a name: no password; an SQLite file's path
    made absolute, so the same file has one name wherever the command runs."""
    file = sqlite_file(url)
    if file is not None:
        return f"{url.split(':///', 1)[0]}:///{file}"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}"))
