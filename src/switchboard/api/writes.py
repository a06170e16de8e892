"""A write as the REST routes make it: committed, then its events published; and its
response, stored with it for the request's `Idempotency-Key`.

Never published before the commit (a subscriber must not see what a rollback undoes) and
never on a rollback. A route builds its response inside its `write` block (`respond`), and
the request's key (`CURRENT_KEY`, set by the middleware) is marked committed in the
write's own transaction with that response, so a retry is never applied twice and always
gets the write's real result, even when the answer to the COMMIT was lost on its way back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import Response
from pydantic import BaseModel

from switchboard.metrics import METRICS
from switchboard.state import AppState
from switchboard.store import patch
from switchboard.store.db import Tx
from switchboard.store.events import trim_committed
from switchboard.store.idempotency import CURRENT_KEY, Answer, mark_committed

JSON_TYPE = "application/json"


@asynccontextmanager
async def write(state: AppState) -> AsyncIterator[Tx]:
    """One write: commit (with the key's record and the response `respond` registered),
    then publish its events."""
    pending = CURRENT_KEY.get()
    with METRICS.write_db_seconds.time():
        async with state.db.transaction() as tx:
            yield tx
            if pending is not None:
                mark_committed(tx, pending, pending.answer)
    if pending is not None:
        pending.recorded = True
    await state.publisher.publish(tx.events)


def respond(
    content: BaseModel | None, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A write route's response, built inside its `write` block: the bytes it sends are
    the bytes its key's record stores (`None`: no body, e.g. 204)."""
    body = b"" if content is None else content.model_dump_json().encode()
    answer = _answer(status, body, headers, json=content is not None)
    if (pending := CURRENT_KEY.get()) is not None:
        pending.answer = answer
    return as_response(answer)


def as_response(answer: Answer) -> Response:
    return Response(answer.body, status_code=answer.status, headers=answer.headers)


def json_answer(data: dict[str, Any], headers: Mapping[str, str]) -> Answer:
    """A 200 whose body is `data` as JSON (the widget PATCH's, built by the store's path)."""
    return _answer(200, orjson.dumps(data), headers, json=True)


def _answer(status: int, body: bytes, headers: Mapping[str, str] | None, *, json: bool) -> Answer:
    kept = {name.lower(): value for name, value in (headers or {}).items()}
    if json:
        kept["content-type"] = JSON_TYPE
    return Answer(status, kept, body)


async def patch_widget(
    state: AppState,
    slug: str,
    key: str,
    changes: dict[str, Any],
    *,
    if_match: int | None,
    respond: patch.Respond,
) -> Answer:
    """A widget PATCH (`store.patch` picks how it is written), committed (its key's
    record with `respond`'s response) then published, then the retention trim it made
    due; the response."""
    pending = CURRENT_KEY.get()
    with METRICS.write_db_seconds.time():
        done = await patch.patch_widget(
            state.db,
            state.recent,
            slug,
            key,
            changes,
            if_match=if_match,
            idempotency=pending,
            respond=respond,
        )
    if pending is not None:
        pending.recorded = True
    await state.publisher.publish(done.events)
    if done.trim is not None:
        await trim_committed(state.db, done.trim)
    return done.answer or respond(done.data)
