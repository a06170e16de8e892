"""`Client`, the blocking twin: the same REST calls, and the `iter_` ones as plain iterators."""

from __future__ import annotations

import uuid

import pytest

from conftest import Target
from switchboard_client import Client, NotFound, PreconditionFailed, Unauthorized


def test_every_rest_call_blocking(target: Target) -> None:
    slug = f"cs-{uuid.uuid4().hex[:12]}"
    with Client(target.url, token=target.admin_key) as sb:
        for n in range(3):
            sb.create_board(f"{slug}-{n}")
        board = sb.update_board(f"{slug}-1", title="One")
        assert board["title"] == "One"
        page = sb.list_boards(limit=1)
        assert len(page["items"]) == 1
        listed = [b["slug"] for b in sb.iter_boards(page_size=1)]
        assert [s for s in listed if s.startswith(slug)] == [f"{slug}-{n}" for n in range(3)]

        sb.put_widget(f"{slug}-0", "n", kind="number", value=1)
        for value in (2, 3, 4):
            sb.set(f"{slug}-0", "n", value)
        assert sb.get_widget(f"{slug}-0", "n")["value"] == 4
        assert [e["seq"] for e in sb.events(f"{slug}-0")] == [1, 2, 3, 4]
        assert sb.list_events(f"{slug}-0", limit=3)["next_after"] == 3

        events = sb.iter_events(f"{slug}-0", page_size=1)
        assert [next(events)["seq"], next(events)["seq"]] == [1, 2]
        events.close()  # stopping early closes its async generator on the client's loop

        assert sb.update(f"{slug}-0", {"n": 5})[0]["value"] == 5
        sb.put_widget(f"{slug}-0", "s", kind="series")
        assert [p["v"] for p in sb.append_points(f"{slug}-0", "s", [1, 2])["value"]] == [1, 2]
        with pytest.raises(PreconditionFailed):
            sb.delete_widget(f"{slug}-0", "n", version=1)
        sb.delete_widget(f"{slug}-0", "n")
        with pytest.raises(NotFound):
            sb.get_widget(f"{slug}-0", "n")

        key = sb.create_key("write", boards=[f"{slug}-1"], name=slug)
        with Client(target.url, token=key["key"]) as writer:
            token = writer.mint_token(role="write", ttl=60)
            assert (token["role"], token["boards"]) == ("write", [f"{slug}-1"])
            with Client(target.url, token=token["token"]) as viewer:
                assert viewer.put_widget(f"{slug}-1", "t", kind="text", value="hi")["version"] == 1
            sb.revoke_key(key["id"])
            with pytest.raises(Unauthorized):
                writer.get_board(f"{slug}-1")
        assert any(k["id"] == key["id"] and k["revoked_at"] for k in sb.list_keys())

        sb.delete_board(f"{slug}-2")
        with pytest.raises(NotFound):
            sb.get_board(f"{slug}-2")
