"""CORS on REST and SSE: listed origins get preflights and readable answers (errors and
the stream included), other origins get nothing, and no list means no CORS at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import backend_settings
from tests.helpers import AUTH, LiveServer, SseStream, start_server

LISTED = "http://app.example.test"
UNLISTED = "http://evil.example.test"
WRITE_HEADERS = "authorization, content-type, idempotency-key, if-match"


def settings(tmp_path: Path, **overrides: Any) -> Any:
    """Embedded settings (CORS does not depend on the backend), `LISTED` allowed."""
    overrides.setdefault("allowed_origins", [LISTED])
    return backend_settings("embedded", tmp_path, "", "", **overrides)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[LiveServer]:
    async with start_server(settings(tmp_path, max_body_bytes=4096)) as live:
        yield live


def preflight(origin: str, method: str, headers: str = WRITE_HEADERS) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


def listed(response: httpx.Response) -> None:
    """The answer is readable by `LISTED`, with the headers a page needs exposed."""
    assert response.headers["access-control-allow-origin"] == LISTED
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"etag", "retry-after", "location", "x-request-id"} <= exposed
    assert "origin" in response.headers["vary"].lower()
    assert "access-control-allow-credentials" not in response.headers


def no_cors(response: httpx.Response) -> None:
    assert [h for h in response.headers if h.startswith("access-control-")] == []


async def test_preflight_for_a_write_from_a_listed_origin(api: LiveServer, slug: str) -> None:
    await api.create_board(slug)
    await api.put_widget(slug, "n", value=1)
    path = f"/api/boards/{slug}/widgets/n"
    anonymous = httpx.AsyncClient(base_url=api.base_url)  # a preflight carries no credential
    async with anonymous:
        response = await anonymous.options(path, headers=preflight(LISTED, "PATCH"))
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == LISTED
    assert "PATCH" in response.headers["access-control-allow-methods"].split(", ")
    allowed = {h.lower() for h in response.headers["access-control-allow-headers"].split(", ")}
    assert set(WRITE_HEADERS.split(", ")) <= allowed
    assert "last-event-id" in allowed
    assert response.headers["access-control-max-age"] == "600"
    assert "Origin" in response.headers["vary"]
    assert "access-control-allow-credentials" not in response.headers
    widget = (await api.http.get(path)).json()
    assert widget["version"] == 1  # nothing written


async def test_preflight_from_an_unlisted_origin_is_refused(api: LiveServer, slug: str) -> None:
    await api.create_board(slug)
    response = await api.http.options(f"/api/boards/{slug}", headers=preflight(UNLISTED, "PATCH"))
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers


async def test_a_preflight_asking_for_another_header_is_refused(api: LiveServer, slug: str) -> None:
    headers = preflight(LISTED, "PATCH", "authorization, x-secret")
    response = await api.http.options(f"/api/boards/{slug}", headers=headers)
    assert response.status_code == 400


async def test_answers_are_readable_by_listed_origins_only(api: LiveServer, slug: str) -> None:
    await api.create_board(slug, public=True)
    path = f"/api/boards/{slug}"
    response = await api.http.get(path, headers={"Origin": LISTED})
    assert response.status_code == 200
    listed(response)
    assert response.headers["etag"]
    unlisted = await api.http.get(path, headers={"Origin": UNLISTED})
    assert unlisted.status_code == 200
    assert [h for h in unlisted.headers if h.startswith("access-control-")] == []
    assert "origin" in unlisted.headers["vary"].lower()  # caches must not mix the two
    without = await api.http.get(path)
    assert "access-control-allow-origin" not in without.headers


async def test_errors_are_readable_by_a_listed_origin(api: LiveServer, slug: str) -> None:
    origin = {"Origin": LISTED}
    responses = {
        401: await api.http.get("/api/boards", headers={**origin, "Authorization": "Bearer x"}),
        404: await api.http.get(f"/api/boards/{slug}-missing", headers=origin),
        413: await api.http.post("/api/boards", headers=origin, content=b"x" * 5000),
    }
    for status, response in responses.items():
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"]
        listed(response)
    unlisted = await api.http.get(f"/api/boards/{slug}-missing", headers={"Origin": UNLISTED})
    assert unlisted.status_code == 404
    assert "access-control-allow-origin" not in unlisted.headers


async def test_a_write_and_its_idempotent_replay_are_readable(api: LiveServer, slug: str) -> None:
    await api.create_board(slug)
    await api.put_widget(slug, "n", value=1)
    headers = {"Origin": LISTED, "Idempotency-Key": f"cors-{slug}", "If-Match": '"1"'}
    path = f"/api/boards/{slug}/widgets/n"
    first = await api.http.patch(path, headers=headers, json={"value": 2})
    again = await api.http.patch(path, headers=headers, json={"value": 2})
    for response in (first, again):
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == '"2"'
        listed(response)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers.get_list("access-control-allow-origin") == [LISTED]  # not stored


async def test_the_sse_stream_is_readable_by_a_listed_origin(api: LiveServer, slug: str) -> None:
    await api.create_board(slug, public=True)
    path = f"/api/boards/{slug}/stream"
    for origin, readable in ((LISTED, True), (UNLISTED, False)):
        async with api.http.stream("GET", path, headers={"Origin": origin}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            if readable:
                listed(response)
            else:
                assert "access-control-allow-origin" not in response.headers
            assert (await SseStream(response).next()).event == "snapshot"


async def test_a_preflight_is_not_a_write(tmp_path: Path, slug: str) -> None:
    """Preflights are answered before authentication and the write rate limit."""
    async with start_server(settings(tmp_path, write_rate_limit=2)) as live:
        await live.create_board(slug)
        path = f"/api/boards/{slug}"
        for _ in range(5):
            response = await live.http.options(path, headers=preflight(LISTED, "PATCH"))
            assert response.status_code == 200
        limited = [
            await live.http.patch(path, headers={"Origin": LISTED}, json={"title": "t"})
            for _ in range(3)
        ]
    assert limited[0].status_code == 200, limited[0].text
    assert limited[-1].status_code == 429
    assert limited[-1].headers["retry-after"]
    listed(limited[-1])


async def test_no_origin_listed_means_no_cors(tmp_path: Path, slug: str) -> None:
    async with start_server(settings(tmp_path, allowed_origins=[])) as live:
        await live.create_board(slug, public=True)
        path = f"/api/boards/{slug}"
        refused = await live.http.options(path, headers=preflight(LISTED, "PATCH"))
        read = await live.http.get(path, headers={"Origin": LISTED})
    assert refused.status_code == 405  # as without CORS: there is no OPTIONS route
    no_cors(refused)
    no_cors(read)
    assert "vary" not in read.headers


async def test_any_origin(tmp_path: Path, slug: str) -> None:
    """`*` lets every origin read, with the literal `*` (never credentialed CORS)."""
    async with start_server(settings(tmp_path, allowed_origins=["*"])) as live:
        await live.create_board(slug, public=True)
        path = f"/api/boards/{slug}"
        response = await live.http.options(path, headers=preflight(UNLISTED, "PATCH"))
        read = await live.http.get(path, headers={"Origin": UNLISTED, **AUTH})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert read.headers["access-control-allow-origin"] == "*"
    for answer in (response, read):
        assert "access-control-allow-credentials" not in answer.headers
