"""The JavaScript client's events in Chromium, against a real server: the browser example
of docs/js-client.md as written; several listeners per event and `off`; each
subscription's state through a reconnect, an unsubscribe and a refusal; presence (who
watches, who joins and leaves, asked again after a reconnect)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from tests.helpers import ADMIN_KEY, AUTH, ServerProcess

EXAMPLE = Path(__file__).resolve().parents[2] / "clients" / "js" / "examples" / "browser.html"


@pytest.fixture
async def api(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """The admin's REST client, with a public board `ops` holding `n` = 0."""
    async with httpx.AsyncClient(base_url=server.base_url, headers=AUTH, timeout=10) as client:
        created = await client.post("/api/boards", json={"slug": "ops", "public": True})
        assert created.status_code == 201, created.text
        widget = await client.put("/api/boards/ops/widgets/n", json={"kind": "number", "value": 0})
        assert widget.status_code == 201, widget.text
        yield client


async def set_n(api: httpx.AsyncClient, value: int) -> None:
    response = await api.patch("/api/boards/ops/widgets/n", json={"value": value})
    assert response.status_code == 200, response.text


async def log(page: Page) -> dict[str, Any]:
    logged: dict[str, Any] = await page.evaluate("window.log")
    return logged


async def test_the_documented_browser_example(
    page: Page, server: ServerProcess, api: httpx.AsyncClient
) -> None:
    """clients/js/examples/browser.html (docs/js-client.md shows it) on the server's origin:
    the widgets, live, and how many watch."""
    await page.goto(f"{server.base_url}/healthz?board=ops")
    await page.set_content(EXAMPLE.read_text())
    widgets = page.locator("#widgets li")
    await page.wait_for_function("document.body.dataset.board === 'subscribed'")
    assert await page.locator("#connection").text_content() == "live"
    assert await widgets.all_text_contents() == ["n: 0"]
    await page.wait_for_function("document.querySelector('#viewers').textContent === '1 watching'")
    await set_n(api, 7)
    await page.wait_for_function("document.querySelector('#widgets li').textContent === 'n: 7'")
    # A second viewer (the admin, in the same page) joins: the example hears it.
    await page.evaluate(
        """async (key) => {
            const { Switchboard } = await import("/static/switchboard.js");
            window.second = new Switchboard({ token: key });
            window.second.subscribe("ops");
        }""",
        ADMIN_KEY,
    )
    await page.wait_for_function("document.querySelector('#viewers').textContent === '2 watching'")
    await page.evaluate("window.second.close()")
    await page.wait_for_function("document.querySelector('#viewers').textContent === '1 watching'")


WATCH = """async (key) => {
    const { Switchboard } = await import("/static/switchboard.js");
    const log = (window.log = { client: [], client2: [], states: [], a: [], b: [] });
    Object.assign(log, { presence: [], errors: [] });
    const sb = (window.sb = new Switchboard({ token: key }));
    sb.on("state", ({ state }) => log.client.push(state));
    window.stopClient2 = sb.on("state", ({ state }) => log.client2.push(state));
    const sub = (window.sub = sb.subscribe("ops"));
    sub.on("state", ({ state, previous }) => log.states.push(`${previous}>${state}`));
    sub.on("change", ({ key }) => log.a.push(key));
    const once = ({ key }) => { log.b.push(key); sub.off("change", once); };
    sub.on("change", once);
    sub.on("presence", ({ viewers, changed }) => log.presence.push({ viewers, changed }));
    sub.on("error", (error) => log.errors.push(error.code));
    log.first = await sub.presence();
    log.snapshotSeq = sub.board.seq;
}"""


async def test_listeners_state_and_presence(
    page: Page, server: ServerProcess, api: httpx.AsyncClient
) -> None:
    await page.goto(f"{server.base_url}/healthz")
    await page.evaluate(WATCH, ADMIN_KEY)
    logged = await log(page)
    assert logged["first"] == {"bootstrap": 1}
    assert logged["states"] == ["subscribing>subscribed"]
    assert logged["client"] == logged["client2"] == ["live"]

    # Two `change` listeners; one removed itself after the snapshot.
    await set_n(api, 1)
    await page.wait_for_function("window.log.a.length === 2")
    await set_n(api, 2)
    await page.wait_for_function("window.log.a.length === 3")
    logged = await log(page)
    assert logged["a"] == [None, "n", "n"]
    assert logged["b"] == [None]

    # Presence: an anonymous viewer joins, then leaves.
    await page.evaluate(
        """async () => {
            const { Switchboard } = await import("/static/switchboard.js");
            window.anonymous = new Switchboard();
            window.anonymous.subscribe("ops");
        }"""
    )
    await page.wait_for_function("window.sub.viewers.anonymous === 1")
    await page.evaluate("window.anonymous.close()")
    await page.wait_for_function("!('anonymous' in window.sub.viewers)")
    logged = await log(page)
    changes = [entry["changed"] for entry in logged["presence"][1:]]
    assert {"anonymous": 1} in [{k: v for k, v in c.items() if k == "anonymous"} for c in changes]
    assert changes[-1] == {"anonymous": 0}
    assert logged["presence"][0] == {"viewers": {"bootstrap": 1}, "changed": None}

    # A dropped connection: `subscribing` until confirmed again; presence is asked again.
    await page.evaluate("window.stopClient2(); window.sb.ws.close(4000)")
    await page.wait_for_function(
        "window.log.states.length === 3 && window.sub.state === 'subscribed'"
    )
    await page.wait_for_function(
        "window.log.presence.filter((p) => p.changed === null).length === 2"
    )
    await set_n(api, 3)
    await page.wait_for_function("window.log.a.at(-1) === 'n' && window.log.a.length === 4")
    logged = await log(page)
    assert logged["states"] == [
        "subscribing>subscribed",
        "subscribed>subscribing",
        "subscribing>subscribed",
    ]
    assert logged["client"] == ["live", "reconnecting", "live"]
    assert logged["client2"] == ["live"]  # removed by the function `on` returned
    assert logged["a"] == [None, "n", "n", "n"]  # resumed with `since`: no snapshot again

    # Unsubscribed: final; presence() refuses.
    unsubscribed = await page.evaluate(
        """async () => {
            window.sub.unsubscribe();
            const refused = await window.sub.presence().then(() => null, (error) => error.message);
            return { state: window.sub.state, refused, left: window.sb.subscriptions.size };
        }"""
    )
    assert unsubscribed == {
        "state": "unsubscribed",
        "refused": "board:ops is unsubscribed",
        "left": 0,
    }
    await set_n(api, 4)
    await asyncio.sleep(0.5)
    assert (await log(page))["a"] == [None, "n", "n", "n"]

    # A board that does not exist: `failed`, with the server's error.
    missing = await page.evaluate(
        """async () => {
            const sub = window.sb.subscribe("nope");
            const states = [];
            sub.on("state", ({ state, error }) => states.push([state, error.code]));
            const error = await sub.once("error");
            return { states, error: error.code, failed: sub.error.code, state: sub.state };
        }"""
    )
    assert missing == {
        "states": [["failed", "not_found"]],
        "error": "not_found",
        "failed": "not_found",
        "state": "failed",
    }
    await page.evaluate("window.sb.close()")
    await page.wait_for_function("window.log.client.at(-1) === 'offline'")
