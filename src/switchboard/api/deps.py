"""Dependencies shared by the routers, as `Annotated` aliases that keep signatures short."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from switchboard.errors import PreconditionFailed
from switchboard.state import AppState


def get_state(request: Request) -> AppState:
    state: AppState = request.state.switchboard
    return state


def if_match(
    if_match: Annotated[str | None, Header(description='The version last seen, as "N"')] = None,
) -> int | None:
    """The version named by `If-Match` (`"3"`, `W/"3"` or `3`); `*` and absence mean any."""
    if if_match is None or if_match.strip() == "*":
        return None
    tag = if_match.split(",")[0].strip().removeprefix("W/").strip('"')
    if not tag.isdigit() or len(tag) > 18:
        raise PreconditionFailed(f"If-Match {if_match[:40]!r} names no version of this resource")
    return int(tag)


State = Annotated[AppState, Depends(get_state)]
IfMatch = Annotated[int | None, Depends(if_match)]


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}
