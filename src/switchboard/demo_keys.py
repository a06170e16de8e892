"""Where `switchboard demo` keeps the key it made, so each run reuses it.

One JSON file, readable by its owner only (0600), under `$XDG_STATE_HOME/switchboard`
(`~/.local/state/switchboard` by default): secrets by database (as `database_url.shown`
names it: no password) and board, since a key belongs to one store and is limited to
one board.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700


def keys_file() -> Path:
    """The file, after the XDG base directory rule (a relative `$XDG_STATE_HOME` is ignored)."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "switchboard" / "demo-keys.json"


def load(database: str, board: str) -> str | None:
    """The secret saved for this database and board, if any."""
    secret = _read(keys_file()).get(_entry(database, board))
    return secret if isinstance(secret, str) else None


def save(database: str, board: str, secret: str) -> None:
    """Remember `secret` for this database and board (replacing the one refused)."""
    file = keys_file()
    saved = _read(file)
    saved[_entry(database, board)] = secret
    file.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    draft = file.with_suffix(".tmp")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(descriptor, "wb") as out:
        out.write(orjson.dumps(saved, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    os.chmod(draft, FILE_MODE)  # an older draft may have had other permissions
    os.replace(draft, file)


def _entry(database: str, board: str) -> str:
    return f"{database} board={board}"


def _read(file: Path) -> dict[str, object]:
    """The saved keys; none if the file is missing or unreadable (a new key is then made)."""
    try:
        saved = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return saved if isinstance(saved, dict) else {}
