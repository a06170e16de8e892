"""`GET /api/boards/{slug}?at=<seq>`: the board as it was right after a past seq.

Read like the live board (one snapshot, the same access rule), from the store's
checkpoints. A board that was private at that seq stays private: the caller must be
allowed to read it both as it is and as it was. The answer carries no `ETag` (the live
one names the board's current version, which this is not); `Seq-Time` says when that
seq's event was written.
"""

from __future__ import annotations

from fastapi import Response

from switchboard.auth.principal import Principal
from switchboard.resources import BoardOut
from switchboard.state import AppState
from switchboard.store import checkpoints
from switchboard.store.events import find_board
from switchboard.timefmt import iso

SEQ_TIME_HEADER = "Seq-Time"


async def board_at(
    state: AppState, caller: Principal, slug: str, seq: int, response: Response
) -> BoardOut:
    """The board `slug` right after `seq`; 404 as the live GET, 422 and 410 as documented."""
    async with state.db.read() as session:
        board = await find_board(session, slug)
        caller.require_read(slug, board.public)  # before anything about its history
        past = await checkpoints.board_at(session, board, seq)
    caller.require_read(slug, board.public and bool(past.state["public"]))
    response.headers[SEQ_TIME_HEADER] = iso(past.at)
    return BoardOut.model_validate(past.state)
