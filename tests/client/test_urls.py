"""The server's address as people type it."""

from __future__ import annotations

import pytest

from switchboard_client import AsyncClient
from switchboard_client.urls import server_url


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("localhost:8000", "http://localhost:8000"),
        ("127.0.0.1:8000/", "http://127.0.0.1:8000"),
        (" https://sb.example.org/ ", "https://sb.example.org"),
        ("HTTP://host:1", "HTTP://host:1"),
    ],
)
def test_a_url_without_a_scheme_is_http(typed: str, meant: str) -> None:
    assert server_url(typed) == meant


@pytest.mark.parametrize("typed", ["ws://host:8000", "ftp://host", "http://", ""])
def test_other_schemes_and_no_host_are_refused(typed: str) -> None:
    with pytest.raises(ValueError, match="http"):
        server_url(typed)


async def test_the_client_takes_a_url_without_a_scheme() -> None:
    async with AsyncClient("localhost:8000") as sb:
        assert sb.base_url == "http://localhost:8000"
