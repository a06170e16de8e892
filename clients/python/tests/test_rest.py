"""Every REST call of `AsyncClient` against a real server: results, paging, typed errors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from conftest import Target
from switchboard_client import (
    AsyncClient,
    BadRequest,
    Board,
    BoardWithWidgets,
    Conflict,
    Event,
    Forbidden,
    Key,
    NewKey,
    NotFound,
    PreconditionFailed,
    Token,
    Unauthorized,
    ValidationError,
    Widget,
)


def shaped(value: Mapping[str, Any], typed: Any) -> bool:
    """The answer has exactly the fields of its `TypedDict`, no more, no fewer."""
    return set(value) == set(typed.__required_keys__)


async def test_boards_create_get_update_delete(admin: AsyncClient, slug: str) -> None:
    created = await admin.create_board(slug, title="Ops", description="the ops board")
    assert shaped(created, BoardWithWidgets)
    assert (created["slug"], created["title"], created["public"]) == (slug, "Ops", False)
    assert (created["widgets"], created["seq"], created["version"]) == ([], 0, 1)
    assert await admin.get_board(slug) == created

    changed = await admin.update_board(slug, title="Operations", public=True)
    assert shaped(changed, Board)
    assert (changed["title"], changed["description"], changed["public"]) == (
        "Operations",
        "the ops board",  # not given: unchanged
        True,
    )
    again = await admin.update_board(slug, description="", version=changed["version"])
    assert (again["description"], again["version"]) == ("", changed["version"] + 1)
    laid = await admin.update_board(slug, layout=[{"key": "cpu", "w": 2}, {"key": "disk"}])
    assert laid["layout"] == [
        {"key": "cpu", "w": 2, "h": None},
        {"key": "disk", "w": None, "h": None},
    ]
    assert (await admin.get_board(slug))["layout"] == laid["layout"]
    again = await admin.update_board(slug, layout=[], version=laid["version"])
    assert again["layout"] == []
    with pytest.raises(PreconditionFailed) as stale:
        await admin.update_board(slug, title="late", version=laid["version"])
    assert (stale.value.status, stale.value.code) == (412, "precondition_failed")

    with pytest.raises(PreconditionFailed):
        await admin.delete_board(slug, version=changed["version"])
    await admin.delete_board(slug, version=again["version"])
    with pytest.raises(NotFound) as gone:
        await admin.get_board(slug)
    assert (gone.value.status, gone.value.code) == (404, "not_found")


async def test_board_errors(admin: AsyncClient, slug: str) -> None:
    await admin.create_board(slug)
    with pytest.raises(Conflict) as exists:
        await admin.create_board(slug)
    assert exists.value.status == 409
    with pytest.raises(ValidationError) as invalid:
        await admin.create_board("Not A Slug!")
    assert invalid.value.status == 422
    assert invalid.value.details, "422 says which field"
    with pytest.raises(NotFound):
        await admin.update_board(f"{slug}-missing", title="x")
    with pytest.raises(BadRequest) as cursor:
        await admin.list_boards(cursor="not-a-cursor!")
    assert cursor.value.status == 400


async def test_boards_page_by_page(admin: AsyncClient, slug: str) -> None:
    mine = [f"{slug}-{n}" for n in range(5)]
    for board in reversed(mine):
        await admin.create_board(board)

    first = await admin.list_boards(limit=2)
    assert len(first["items"]) == 2
    assert all(shaped(board, Board) for board in first["items"])
    assert first["next_cursor"] is not None

    pages, cursor = [first], first.get("next_cursor")
    while cursor is not None:
        pages.append(await admin.list_boards(cursor=cursor, limit=2))
        cursor = pages[-1]["next_cursor"]
    paged = [board["slug"] for page in pages for board in page["items"]]
    assert len(pages) >= 3
    assert all(len(page["items"]) <= 2 for page in pages)

    listed = [board["slug"] async for board in admin.iter_boards(page_size=2)]
    assert listed == paged, "the iterator follows the same cursors"
    assert listed == sorted(set(listed)), "by slug, each once"
    assert [s for s in listed if s.startswith(f"{slug}-")] == mine
    assert [b["slug"] async for b in admin.iter_boards()] == listed  # the server's page size


async def test_widgets(admin: AsyncClient, slug: str) -> None:
    await admin.create_board(slug)
    cpu = await admin.put_widget(slug, "cpu", kind="gauge", config={"max": 100}, value=12)
    assert shaped(cpu, Widget)
    assert (cpu["key"], cpu["kind"], cpu["value"], cpu["version"]) == ("cpu", "gauge", 12, 1)
    assert await admin.get_widget(slug, "cpu") == cpu

    replaced = await admin.put_widget(slug, "cpu", kind="number", value=1, version=1)
    assert (replaced["kind"], replaced["config"], replaced["version"]) == ("number", {}, 2)
    with pytest.raises(PreconditionFailed):
        await admin.put_widget(slug, "cpu", kind="number", version=1)

    assert (await admin.set(slug, "cpu", 87, version=2))["value"] == 87
    await admin.put_widget(slug, "api", kind="status", value="up")
    await admin.put_widget(slug, "rps", kind="series", config={"max_points": 3})
    batch = await admin.update(slug, {"api": "down", "cpu": 5})
    assert [(w["key"], w["value"]) for w in batch] == [("api", "down"), ("cpu", 5)]
    assert all(shaped(w, Widget) for w in batch)
    rps = await admin.append_points(slug, "rps", [1, 2, 3, {"v": 4, "t": "2026-01-01T00:00:00Z"}])
    assert [p["v"] for p in rps["value"]] == [2, 3, 4]  # it keeps max_points

    with pytest.raises(ValidationError) as kind:
        await admin.put_widget(slug, "bad", kind="hologram")
    assert kind.value.status == 422
    with pytest.raises(PreconditionFailed):
        await admin.delete_widget(slug, "cpu", version=1)
    await admin.delete_widget(slug, "cpu")
    with pytest.raises(NotFound):
        await admin.get_widget(slug, "cpu")
    assert [w["key"] for w in (await admin.get_board(slug))["widgets"]] == ["api", "rps"]


async def test_events_paged(admin: AsyncClient, slug: str) -> None:
    await admin.create_board(slug)
    await admin.put_widget(slug, "n", kind="number", value=0)
    for value in range(1, 5):
        await admin.set(slug, "n", value)

    every: list[Event] = [e async for e in admin.iter_events(slug, page_size=2)]
    assert [(e["type"], e["seq"]) for e in every] == [("event", n) for n in range(1, 6)]
    assert [e["data"]["value"] for e in every] == [0, 1, 2, 3, 4]
    assert all(shaped(e, Event) for e in every)
    assert [e["seq"] async for e in admin.iter_events(slug, after=2)] == [3, 4, 5]

    assert await admin.events(slug) == every  # the list form
    assert [e["seq"] for e in await admin.events(slug, after=1, limit=3)] == [2, 3, 4]

    page = await admin.list_events(slug, limit=2)
    assert ([e["seq"] for e in page["items"]], page["seq"], page["next_after"]) == ([1, 2], 5, 2)
    last = await admin.list_events(slug, after=4)
    assert ([e["seq"] for e in last["items"]], last["next_after"]) == ([5], None)
    with pytest.raises(NotFound):
        await admin.events(f"{slug}-missing")


async def test_a_minted_token_reads_a_private_board(
    admin: AsyncClient, target: Target, slug: str
) -> None:
    await admin.create_board(slug)  # private
    await admin.create_board(f"{slug}-other")
    token: Token = await admin.mint_token(boards=[slug], ttl=120)
    assert shaped(token, Token)
    assert (token["role"], token["boards"]) == ("read", [slug])

    async with AsyncClient(target.url, token=token["token"]) as viewer:
        assert (await viewer.get_board(slug))["slug"] == slug
        with pytest.raises(NotFound):
            await viewer.get_board(f"{slug}-other")
        with pytest.raises(Forbidden) as read_only:
            await viewer.put_widget(slug, "x", kind="number")
        assert (read_only.value.status, read_only.value.code) == (403, "forbidden")

    with pytest.raises(ValidationError):
        await admin.mint_token(role="admin")  # type: ignore[arg-type]
    async with AsyncClient(target.url) as anonymous:
        with pytest.raises(NotFound):
            await anonymous.get_board(slug)


async def test_keys_create_list_revoke(admin: AsyncClient, target: Target, slug: str) -> None:
    await admin.create_board(slug)
    created: NewKey = await admin.create_key("read", boards=[slug], name=slug)
    assert shaped(created, NewKey)
    assert created["key"].startswith(created["prefix"])
    assert (created["role"], created["boards"], created["revoked_at"]) == ("read", [slug], None)

    listed: list[Key] = [k for k in await admin.list_keys() if k["id"] == created["id"]]
    assert len(listed) == 1
    assert shaped(listed[0], Key), "listed without the secret"
    assert listed[0]["name"] == slug

    async with AsyncClient(target.url, token=created["key"]) as reader:
        assert (await reader.get_board(slug))["slug"] == slug
        with pytest.raises(Forbidden):
            await reader.set(slug, "x", 1)
        with pytest.raises(Forbidden):
            await reader.list_keys()
        with pytest.raises(Forbidden):
            await reader.create_key("admin")

        await admin.revoke_key(created["id"])
        with pytest.raises(Unauthorized) as revoked:
            await reader.get_board(slug)
        assert (revoked.value.status, revoked.value.code) == (401, "unauthorized")

    [after] = [k for k in await admin.list_keys() if k["id"] == created["id"]]
    assert after["revoked_at"] is not None
    with pytest.raises(NotFound):
        await admin.revoke_key("nosuchkey")


async def test_an_unknown_credential_is_unauthorized(target: Target) -> None:
    async with AsyncClient(target.url, token="sbk_nosuchkey_0000000000000000") as stranger:
        with pytest.raises(Unauthorized):
            await stranger.list_boards()
