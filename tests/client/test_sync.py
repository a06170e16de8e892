"""`Client`, the synchronous facade, from plain code against a `switchboard serve` process."""

from __future__ import annotations

import threading

import pytest

from switchboard_client import Client, NotFound
from tests.helpers import ADMIN_KEY, ServerProcess


def client_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "switchboard-client"]


def test_the_sync_client_from_plain_code(process: ServerProcess, slug: str) -> None:
    with Client(process.base_url, token=ADMIN_KEY) as sb:
        sb.create_board(slug, title="Sync")
        sb.put_widget(slug, "n", kind="number", value=1)
        sb.put_widget(slug, "m", kind="text", value="a")
        frames = sb.watch(slug)
        first = next(frames)
        assert first["type"] == "snapshot"
        assert (first["seq"], first["reset"]) == (2, False)
        changed = sb.update(slug, {"n": 2, "m": "b"})
        assert [w["value"] for w in changed] == [2, "b"]
        event = next(frames)
        assert event["type"] == "event"
        assert (event["seq"], event["event"]) == (3, "widgets.updated")
        frames.close()  # closes the WebSocket on the client's loop
        assert sb.set(slug, "n", 3)["version"] == 3
        assert [e["seq"] for e in sb.events(slug, after=1)] == [2, 3, 4]
        with pytest.raises(NotFound) as missing:
            sb.get_board("nope")
        assert missing.value.status == 404
        assert sb.create_board.__doc__ is not None  # the async method's own documentation
    assert client_threads() == []  # closing stopped the private loop


async def test_the_sync_client_inside_a_running_event_loop(
    process: ServerProcess, slug: str
) -> None:
    """It never touches the caller's loop (a notebook, a sync callback in async code)."""
    with Client(process.base_url, token=ADMIN_KEY) as sb:
        assert sb.create_board(slug)["slug"] == slug
    assert client_threads() == []
