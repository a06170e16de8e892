"""`Idempotency-Key`: a retried write returns the first response and writes nothing twice."""

from __future__ import annotations

import asyncio
import uuid

from tests.helpers import LiveServer


def key() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


async def event_count(server: LiveServer, slug: str) -> int:
    return len((await server.http.get(f"/api/boards/{slug}/events")).json()["items"])


async def test_retried_create_returns_first_response(server: LiveServer, slug: str) -> None:
    headers = key()
    first = await server.http.post("/api/boards", json={"slug": slug}, headers=headers)
    again = await server.http.post("/api/boards", json={"slug": slug}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    plain = await server.http.post("/api/boards", json={"slug": slug})
    assert plain.status_code == 409  # without a key it really is a second create


async def test_retried_patch_writes_and_publishes_once(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    await server.put_widget(slug, "n", value=1)
    ws = await server.ws()
    await ws.subscribe(slug, since=1)
    headers = key()
    path = f"/api/boards/{slug}/widgets/n"
    responses = [
        await server.http.patch(path, json={"value": 5}, headers=headers) for _ in range(3)
    ]
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert (await server.http.get(path)).json()["version"] == 2
    assert await event_count(server, slug) == 2
    await server.set_value(slug, "n", 6)  # the next event must be seq 3: nothing in between
    events = await ws.events(2)
    assert [e["seq"] for e in events] == [2, 3]
    await ws.close()


async def test_same_key_different_request_is_rejected(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    await server.put_widget(slug, "n", value=1)
    headers = key()
    path = f"/api/boards/{slug}/widgets/n"
    assert (await server.http.patch(path, json={"value": 2}, headers=headers)).status_code == 200
    reused = await server.http.patch(path, json={"value": 3}, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "validation_error"
    assert (await server.http.get(path)).json()["value"] == 2


async def test_concurrent_retries_write_once(server: LiveServer, slug: str) -> None:
    await server.create_board(slug)
    await server.put_widget(slug, "s", kind="series")
    headers = key()
    path = f"/api/boards/{slug}/widgets/s/points"
    body = {"points": [{"v": 1}]}
    responses = await asyncio.gather(
        *(server.http.post(path, json=body, headers=headers) for _ in range(10))
    )
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {200, 409}
    assert 200 in statuses
    assert len((await server.http.get(f"/api/boards/{slug}/widgets/s")).json()["value"]) == 1
    retry = await server.http.post(path, json=body, headers=headers)
    assert retry.status_code == 200
    assert retry.headers["idempotent-replayed"] == "true"
    assert await event_count(server, slug) == 2


async def test_a_request_that_changed_nothing_is_not_recorded(
    server: LiveServer, slug: str
) -> None:
    """A 404 wrote nothing: the same request, retried once the board exists, is applied
    (once), instead of getting the stale 404 back for a day."""
    headers = key()
    path = f"/api/boards/{slug}/widgets/missing"
    first = await server.http.patch(path, json={"value": 1}, headers=headers)
    assert first.status_code == 404
    await server.create_board(slug)
    await server.put_widget(slug, "missing", value=0)
    again = await server.http.patch(path, json={"value": 1}, headers=headers)
    assert again.status_code == 200
    assert again.json()["value"] == 1
    replayed = await server.http.patch(path, json={"value": 1}, headers=headers)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.content == again.content
    board = (await server.http.get(f"/api/boards/{slug}")).json()
    assert board["seq"] == 2  # widget.created, one widget.updated


async def test_malformed_key_is_a_400(server: LiveServer) -> None:
    response = await server.http.post(
        "/api/boards", json={"slug": "x"}, headers={"Idempotency-Key": "a" * 300}
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert (await server.http.get("/api/boards/x")).status_code == 404
