"""Dependencies shared by the routers, as `Annotated` aliases that keep signatures short."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.api.middleware import PRINCIPAL
from switchboard.auth.authenticator import presented_credential
from switchboard.auth.principal import Principal
from switchboard.errors import BadRequest, PreconditionFailed
from switchboard.realtime.protocol import SLUG_PATTERN
from switchboard.state import AppState
from switchboard.store.events import find_board
from switchboard.store.models import Board

# Dependencies are `async def` even when they never await: FastAPI runs a plain `def` in
# its thread pool, a thread hop per dependency per request (bench/NOTES.md, write path).


async def get_state(request: Request) -> AppState:
    state: AppState = request.state.switchboard
    return state


async def if_match(
    if_match: Annotated[
        str | None,
        Header(alias="If-Match", description='The version last seen (its ETag, `"N"`); stale: 412'),
    ] = None,
) -> int | None:
    """The version named by `If-Match` (`"3"`, `W/"3"` or `3`); `*` and absence mean any."""
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.split(",")[0].strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 18:
        raise PreconditionFailed(f"If-Match {if_match[:40]!r} names no version of this resource")
    return int(tag)


SlugParam = Annotated[
    str, Path(pattern=rf"^{SLUG_PATTERN}$", description="Board slug", examples=["ops"])
]
KeyParam = Annotated[
    str, Path(pattern=rf"^{SLUG_PATTERN}$", description="Widget key", examples=["cpu"])
]

State = Annotated[AppState, Depends(get_state)]
IfMatch = Annotated[int | None, Depends(if_match)]


async def current_principal(request: Request, state: State) -> Principal:
    """The caller of a REST route: credentials in the `Authorization` header only, so that
    keys stay out of URLs, browser history and access logs."""
    if "token" in request.query_params:
        raise BadRequest(
            "`?token=` is accepted only where a browser cannot send headers (/ws and "
            "/api/boards/{slug}/stream): send `Authorization: Bearer <key-or-token>`"
        )
    return await header_principal(
        state, request.scope.get("state", {}), request.headers.get("authorization")
    )


async def header_principal(
    state: AppState, request_state: Mapping[str, Any], authorization: str | None
) -> Principal:
    """The caller named by `Authorization` (`Bearer` only), for the routes and
    `api.direct`: authenticated once per request (the idempotency middleware, when it
    ran, authenticated this same header and left the principal in the request state)."""
    known: Principal | None = request_state.get(PRINCIPAL)
    if known is not None:
        return known
    return await state.auth.authenticate(presented_credential(authorization, None))


async def stream_principal(request: Request, state: State) -> Principal:
    """The caller of the SSE stream: `EventSource` cannot send headers, so `?token=` too."""
    credential = presented_credential(
        request.headers.get("authorization"), request.query_params.get("token")
    )
    return await state.auth.authenticate(credential)


Caller = Annotated[Principal, Depends(current_principal)]
StreamCaller = Annotated[Principal, Depends(stream_principal)]


async def authorize_write(state: AppState, caller: Principal, slug: str) -> None:
    """May `caller` write board `slug` now: role, scope, then the write rate limit (one
    budget per credential family: a key and the tokens it minted share it)."""
    caller.require_write(slug)
    await state.limiter.check(caller.family)


async def board_writer(slug: SlugParam, state: State, caller: Caller) -> Principal:
    await authorize_write(state, caller, slug)
    return caller


Writer = Annotated[Principal, Depends(board_writer)]


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


async def readable_board(session: AsyncSession, slug: str, caller: Principal) -> Board:
    """The live board if `caller` may read it; 404 otherwise, whether or not it exists."""
    board = await find_board(session, slug)
    caller.require_read(slug, board.public)
    return board
