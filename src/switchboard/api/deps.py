"""Dependencies shared by the routers, as `Annotated` aliases that keep signatures short."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import QueryParams
from starlette.types import Scope

from switchboard.api.middleware import PRINCIPAL, header
from switchboard.auth.authenticator import presented_credential
from switchboard.auth.principal import Principal
from switchboard.errors import BadRequest, PreconditionFailed
from switchboard.names import SLUG_PATTERN
from switchboard.state import AppState
from switchboard.store.events import find_board
from switchboard.store.models import Board

# Dependencies are `async def` even when they never await: FastAPI runs a plain `def` in
# its thread pool, a thread hop per dependency per request (bench/NOTES.md, write path).


async def get_state(request: Request) -> AppState:
    state: AppState = request.state.switchboard
    return state


_TAG = r'(W/)?"[\x21\x23-\x7e]*"|[0-9]{1,18}'
IF_MATCH_PATTERN = rf"^\s*(\*|({_TAG})(\s*,\s*({_TAG}))*)\s*$"
"""What `If-Match` may say (RFC 9110): `*`, or a list of entity tags (`"3"`, `W/"3"`; a
bare `3` too). Our ETags are versions; any other tag is well formed and matches none."""
IF_MATCH = re.compile(IF_MATCH_PATTERN)
_VERSION = re.compile(r'(?:W/)?"([0-9]{1,18})"|([0-9]{1,18})')


async def if_match(
    if_match: Annotated[
        str | None,
        Header(
            alias="If-Match",
            description='`*`, or the version last seen (its ETag, `"N"`); stale: 412',
            json_schema_extra={"pattern": IF_MATCH_PATTERN},
        ),
    ] = None,
) -> int | None:
    """The version named by `If-Match`; `*` and absence mean any. A value that is not a
    list of entity tags (empty, a bare word) is a 400, as the document's pattern says; a
    list naming no version, or two, can match no current version: 412."""
    if if_match is None:
        return None
    value = if_match.strip()
    if not IF_MATCH.fullmatch(value):
        raise BadRequest(f'If-Match must be `*` or entity tags (`"N"`), not {value[:40]!r}')
    if value == "*":
        return None
    versions = {int(a or b) for a, b in _VERSION.findall(value) if a or b}
    if len(versions) != 1:
        raise PreconditionFailed(f"If-Match {value[:40]!r} names no one version of this resource")
    return versions.pop()


SlugParam = Annotated[
    str, Path(pattern=rf"^{SLUG_PATTERN}$", description="Board slug", examples=["ops"])
]
KeyParam = Annotated[
    str, Path(pattern=rf"^{SLUG_PATTERN}$", description="Widget key", examples=["cpu"])
]

State = Annotated[AppState, Depends(get_state)]
IfMatch = Annotated[int | None, Depends(if_match)]


async def current_principal(request: Request, state: State) -> Principal:
    return await rest_principal(state, request.scope)


async def rest_principal(state: AppState, scope: Scope) -> Principal:
    """The caller of a REST route: credentials in the `Authorization` header only, so that
    keys stay out of URLs, browser history and access logs."""
    if scope["query_string"] and "token" in QueryParams(scope["query_string"]):
        raise BadRequest(
            "`?token=` is accepted only where a browser cannot send headers (/ws and "
            "/api/boards/{slug}/stream): send `Authorization: Bearer <key-or-token>`"
        )
    return await header_principal(state, scope.get("state", {}), header(scope, b"authorization"))


async def header_principal(
    state: AppState, request_state: Mapping[str, Any], authorization: str | None
) -> Principal:
    """The caller named by `Authorization` (`Bearer` only), authenticated once per request
    (the idempotency middleware, when it ran, authenticated this same header and left the
    principal in the request state)."""
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
