"""`switchboard_client` against a real server: every call, typed errors, batch, watch."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from switchboard_client import (
    NO_RETRY,
    AsyncClient,
    Conflict,
    ConnectionFailed,
    Frame,
    NotFound,
    PreconditionFailed,
    RateLimited,
    RetryPolicy,
    Unauthorized,
    ValidationError,
)
from tests.conftest import backend_settings
from tests.helpers import ADMIN_KEY, LiveServer, free_port, start_server


@pytest.fixture
async def sb(server: LiveServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.base_url, token=ADMIN_KEY) as client:
        yield client


async def next_frame(frames: AsyncIterator[Frame], timeout: float = 10.0) -> Frame:
    return await asyncio.wait_for(anext(frames), timeout)


async def test_every_call_against_a_real_server(sb: AsyncClient, slug: str) -> None:
    board = await sb.create_board(slug, title="Ops", public=True)
    assert (board["slug"], board["title"], board["seq"]) == (slug, "Ops", 0)
    with pytest.raises(Conflict) as exists:
        await sb.create_board(slug)
    assert (exists.value.status, exists.value.code) == (409, "conflict")

    cpu = await sb.put_widget(slug, "cpu", kind="gauge", config={"max": 100}, value=12)
    assert (cpu["kind"], cpu["value"], cpu["version"]) == ("gauge", 12, 1)
    await sb.put_widget(slug, "rps", kind="series", config={"max_points": 3})

    assert (await sb.set(slug, "cpu", 87))["value"] == 87
    assert (await sb.set(slug, "cpu", 88, version=2))["version"] == 3
    with pytest.raises(PreconditionFailed):
        await sb.set(slug, "cpu", 1, version=2)

    rps = await sb.append_points(slug, "rps", [1, 2.5, {"v": 3, "t": "2026-01-01T00:00:00Z"}])
    assert [p["v"] for p in rps["value"]] == [1, 2.5, 3]

    fetched = await sb.get_board(slug)
    assert fetched["seq"] == 5
    assert {w["key"]: w["value"] for w in fetched["widgets"]}["cpu"] == 88

    events = await sb.events(slug)
    assert [(e["type"], e["seq"], e["event"]) for e in events] == [
        ("event", 1, "widget.created"),
        ("event", 2, "widget.created"),
        ("event", 3, "widget.updated"),
        ("event", 4, "widget.updated"),
        ("event", 5, "widget.points"),
    ]
    assert [e["seq"] for e in await sb.events(slug, after=3)] == [4, 5]
    assert [e["seq"] for e in await sb.events(slug, after=1, limit=2)] == [2, 3]

    with pytest.raises(NotFound) as missing:
        await sb.set(slug, "nope", 1)
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    assert "nope" in missing.value.message
    await sb.delete_board(slug)
    with pytest.raises(NotFound):
        await sb.get_board(slug)


async def test_a_batch_update_is_one_write_one_event(sb: AsyncClient, slug: str) -> None:
    await sb.create_board(slug)
    for key in ("a", "b", "c"):
        await sb.put_widget(slug, key, kind="number", value=0)
    frames = sb.watch(slug)
    try:
        assert (await next_frame(frames))["type"] == "snapshot"
        changed = await sb.update(slug, {"a": 1, "c": 3})
        assert [(w["key"], w["value"], w["version"]) for w in changed] == [("a", 1, 2), ("c", 3, 2)]
        event = await next_frame(frames)
        assert event["type"] == "event"
        assert (event["seq"], event["event"]) == (4, "widgets.updated")
        assert [w["value"] for w in event["data"]["widgets"]] == [1, 3]
    finally:
        await frames.aclose()
    assert [e["event"] for e in await sb.events(slug, after=3)] == ["widgets.updated"]
    with pytest.raises(ValidationError) as refused:  # all or nothing: b stays 0
        await sb.update(slug, {"b": 2, "ghost": 1})
    assert refused.value.details[0]["loc"] == ["body", "widgets", "ghost"]
    assert (await sb.get_board(slug))["seq"] == 4


async def test_watch_starts_with_a_snapshot_and_tells_a_reset_apart(
    sb: AsyncClient, slug: str
) -> None:
    await sb.create_board(slug)
    await sb.put_widget(slug, "n", kind="number", value=1)
    frames = sb.watch(slug)
    try:
        first = await next_frame(frames)
        assert first["type"] == "snapshot"
        assert (first["seq"], first["reset"]) == (1, False)
        assert first["data"]["widgets"][0]["value"] == 1
        await sb.set(slug, "n", 2)
        live = await next_frame(frames)
        assert (live["type"], live["seq"], live["data"]["value"]) == ("event", 2, 2)
    finally:
        await frames.aclose()

    resumed = sb.watch(slug, since=1)  # from a position: the events after it, no snapshot
    try:
        replayed = await next_frame(resumed)
        assert (replayed["type"], replayed["seq"]) == ("event", 2)
    finally:
        await resumed.aclose()

    ahead = sb.watch(slug, since=99)  # a position this board never had: reset
    try:
        snapshot = await next_frame(ahead)
        assert snapshot["type"] == "snapshot"
        assert (snapshot["seq"], snapshot["reset"]) == (2, True)
        await sb.set(slug, "n", 3)
        after = await next_frame(ahead)
        assert (after["type"], after["seq"]) == ("event", 3)
    finally:
        await ahead.aclose()


async def test_watch_fails_for_good_on_what_retrying_cannot_fix(
    server: LiveServer, sb: AsyncClient, slug: str
) -> None:
    with pytest.raises(NotFound):
        await next_frame(sb.watch(slug))
    await sb.create_board(slug, public=True)
    async with AsyncClient(server.base_url, token="sbk_not-a-key") as stranger:
        with pytest.raises(Unauthorized):
            await next_frame(stranger.watch(slug))
        with pytest.raises(Unauthorized) as refused:
            await stranger.set(slug, "n", 1)
        assert refused.value.status == 401

    await sb.put_widget(slug, "n", kind="number")
    frames = sb.watch(slug)
    assert (await next_frame(frames))["type"] == "snapshot"
    await sb.delete_board(slug)  # the deletion is delivered, then the subscription ends
    deleted = await next_frame(frames)
    assert (deleted["type"], deleted.get("event")) == ("event", "board.deleted")
    with pytest.raises(NotFound):
        await next_frame(frames)


async def test_nothing_connects_until_called_and_an_unreachable_server_fails_typed() -> None:
    port = free_port()  # nothing listens here
    client = AsyncClient(f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=3, backoff=0.05))
    started = time.monotonic()
    with pytest.raises(ConnectionFailed) as failed:
        await client.set("b", "k", 1)
    assert failed.value.status is None
    assert time.monotonic() - started < 5
    await client.aclose()


async def test_rate_limited_writes_wait_retry_after(
    tmp_path: Path, pg_url: str, prefix: str, slug: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = backend_settings("embedded", tmp_path, pg_url, prefix, write_rate_limit=2)
    async with start_server(settings) as live:
        async with AsyncClient(live.base_url, token=ADMIN_KEY, retry=NO_RETRY) as once:
            await once.create_board(slug)
            await once.put_widget(slug, "n", kind="number")

            async def write_until_refused() -> None:
                for value in range(10):  # the third write within one second is refused
                    await once.set(slug, "n", value)

            with pytest.raises(RateLimited) as limited:
                await write_until_refused()
            assert limited.value.status == 429
            assert limited.value.retry_after is not None
            assert limited.value.retry_after >= 1

        await asyncio.sleep(1)  # a fresh window
        retries = logging.getLogger("switchboard_client")  # the server's log setup replaced
        retries.addHandler(caplog.handler)  # the root's handlers: listen to the client's own
        caplog.set_level(logging.DEBUG, logger="switchboard_client")
        try:
            async with AsyncClient(live.base_url, token=ADMIN_KEY) as sb:
                seq = (await sb.get_board(slug))["seq"]
                started = time.monotonic()
                # Five writes at two per one-second window span three windows or more: one
                # wait at least (two when the first write opens its window; one when it
                # lands at a window's end, as CI saw).
                for value in range(5):
                    assert (await sb.set(slug, "n", 100 + value))["value"] == 100 + value
                assert time.monotonic() - started >= 1.0
                events = await sb.events(slug, after=seq)
        finally:
            retries.removeHandler(caplog.handler)
        assert [e["data"]["value"] for e in events] == [100, 101, 102, 103, 104]
        waits = [r.getMessage() for r in caplog.records if "HTTP 429" in r.getMessage()]
        assert len(waits) >= 1
        assert all(w.endswith("retrying in 1.00 s") for w in waits), waits  # Retry-After: 1
