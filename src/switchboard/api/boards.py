"""`/api/boards`: create, list, read, change and delete boards."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from switchboard.api import rewind
from switchboard.api.deps import Caller, IfMatch, SlugParam, State, Writer, authorize_write, etag
from switchboard.api.openapi import ANONYMOUS, REWOUND_ETAG, SEQ_TIME, errors
from switchboard.api.schemas import BoardCreate, BoardPatch, changes
from switchboard.api.writes import respond, write
from switchboard.auth.principal import Principal
from switchboard.errors import BadRequest
from switchboard.resources import BoardOut, BoardPage, BoardSummary, board_out
from switchboard.store import boards

router = APIRouter(prefix="/boards", tags=["boards"])


def _encode_cursor(slug: str) -> str:
    return base64.urlsafe_b64encode(slug.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("cursor is not one this API returned") from None


def _visible(caller: Principal) -> boards.Scope:
    """What a caller's list shows: everything, its boards plus public ones, or public ones."""
    if caller.role is not None and caller.boards is None:
        return boards.Scope(everything=True)
    return boards.Scope(slugs=caller.boards or frozenset())


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=BoardOut,
    responses=errors(401, 403, 404, 409, 429, etag=(201,)),
)
async def create_board(body: BoardCreate, state: State, caller: Caller) -> Response:
    """Create an empty board (409 if the slug is live; a deleted board's slug is reused)."""
    await authorize_write(state, caller, body.slug)
    async with write(state) as tx:
        board = await boards.create_board(
            tx, slug=body.slug, title=body.title, description=body.description, public=body.public
        )
        out = board_out(board, [])
        return respond(out, status=status.HTTP_201_CREATED, headers=etag(board.version))


@router.get("", openapi_extra=ANONYMOUS)
async def list_boards(
    state: State,
    caller: Caller,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> BoardPage:
    """The boards the caller may see, by slug; follow `next_cursor` until it is null."""
    size = min(limit or state.settings.page_limit_default, state.settings.page_limit_max)
    after = None if cursor is None else _decode_cursor(cursor)
    async with state.db.read() as session:
        rows = await boards.list_boards(
            session, after=after, limit=size + 1, scope=_visible(caller)
        )
    more = len(rows) > size
    rows = rows[:size]
    return BoardPage(
        items=[BoardSummary.model_validate(b) for b in rows],
        next_cursor=_encode_cursor(rows[-1].slug) if more else None,
    )


AT_DOC = (
    "Rewind: the board as it was right after this seq (0: as created), rebuilt from its "
    "retained history; no `ETag`, and `Seq-Time` is that seq's time. 410 `history_expired` "
    "before the retained history (or before the board's re-creation), with `History-From`: "
    "the oldest seq still answerable; 422 beyond the board's current seq."
)


BOARD_HEADERS = {"headers": {"ETag": REWOUND_ETAG, "Seq-Time": SEQ_TIME}}


@router.get("/{slug}", responses={**errors(404, 410), 200: BOARD_HEADERS}, openapi_extra=ANONYMOUS)
async def get_board(
    slug: SlugParam,
    state: State,
    caller: Caller,
    response: Response,
    at: Annotated[int | None, Query(ge=0, description=AT_DOC)] = None,
) -> BoardOut:
    """The board with all its widgets; `seq` is the last event the snapshot includes.
    With `at`, the board as it was after that seq (`SEQ_TIME_HEADER`: that event's time)."""
    if at is not None:
        return await rewind.board_at(state, caller, slug, at, response)
    async with state.db.read() as session:
        board, widgets = await boards.load_board(session, slug)
    caller.require_read(slug, board.public)
    response.headers.update(etag(board.version))
    return board_out(board, widgets)


@router.patch("/{slug}", response_model=BoardSummary, responses=errors(etag=(200,)))
async def patch_board(
    slug: SlugParam, body: BoardPatch, state: State, _: Writer, expected: IfMatch
) -> Response:
    """Change the title, description, `public` or `layout` (the widgets' order and sizes);
    with `If-Match`, only at that version."""
    async with write(state) as tx:
        board = await boards.update_board(tx, slug, changes(body), if_match=expected)
        return respond(BoardSummary.model_validate(board), headers=etag(board.version))


@router.delete("/{slug}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_board(slug: SlugParam, state: State, _: Writer, expected: IfMatch) -> Response:
    """Delete the board and its widgets; subscribers get `board.deleted`."""
    async with write(state) as tx:
        await boards.delete_board(tx, slug, if_match=expected)
        return respond(None, status=status.HTTP_204_NO_CONTENT)
