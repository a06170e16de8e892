"""The JavaScript client's `getToken`: a private board watched with 3-second tokens stays
live on one WebSocket past several expiries (each token refreshed in band with an `auth`
frame), and after a 4101 close (no token could be had in time) it comes back with a fresh
token instead of failing, missing nothing."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
from playwright.async_api import Page

from tests.browser.conftest import TTL, Board
from tests.browser.test_client import Watched
from tests.helpers import eventually


async def watch(
    page: Page, board: Board, watched: Watched, values: list[Any], token: str | None = None
) -> None:
    await page.goto(f"{board.server.base_url}/")
    await page.expose_function("reportState", watched.report)
    await page.expose_function("reportValue", lambda value: values.append(value))
    await page.expose_function("mintToken", board.mint)
    await page.evaluate(
        """async ({ token, slug }) => {
            const { Switchboard } = await import("/static/switchboard.js");
            window.client = new Switchboard({
                token,
                getToken: () => window.mintToken(),
                refreshMargin: 1500,
                onStatus: (s) => window.reportState(s.state, s.code ?? null),
            });
            window.client.subscribe(slug, {
                onChange: (state, key) => window.reportValue(state.widgets.get("n").value),
            });
        }""",
        {"token": token or await board.mint(), "slug": board.slug},
    )
    await eventually(lambda: watched.states == ["live"] and values == [0], timeout=10)


def expiry(token: str) -> float:
    return float(jwt.decode(token, options={"verify_signature": False})["exp"])


async def test_short_lived_tokens_are_refreshed_in_band(page: Page, board: Board) -> None:
    watched = Watched(page)
    values: list[Any] = []
    await watch(page, board, watched, values)
    first_expiry = expiry(board.minted[0])
    for value in range(1, 11):  # ~10 s: three tokens' lifetimes and more
        await board.set(value)
        await eventually(lambda v=value: values[-1] == v, timeout=5)  # type: ignore[misc]
        await asyncio.sleep(1)
    assert time.time() > first_expiry + 2 * TTL
    assert len(board.minted) >= 4
    assert values == list(range(11))
    assert watched.states == ["live"]  # never reconnected
    assert len(watched.sockets) == 1


async def test_an_expired_token_means_a_reconnect_with_a_fresh_one(
    page: Page, board: Board
) -> None:
    watched = Watched(page)
    values: list[Any] = []
    token = await board.mint()
    board.refuse_until = expiry(token)  # no refresh in time: it expires
    await watch(page, board, watched, values, token)
    await eventually(lambda: len(watched.states) >= 2, timeout=TTL + 5)
    assert (watched.states[1], watched.codes[1]) == ("reconnecting", 4101)
    await board.set(1)  # around the reconnect: delivered live or replayed with `since`
    await eventually(lambda: watched.states[-1] == "live", timeout=10)
    await eventually(lambda: values[-1] == 1, timeout=5)
    await board.set(2)
    await eventually(lambda: values[-1] == 2, timeout=5)
    assert values == [0, 1, 2]
    assert "failed" not in watched.states
    assert len(watched.sockets) == 2
