"""What a client is told of a store failure: a write that may have committed is never
said to have written nothing, and a read is not told about writes."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]

from switchboard.errors import (
    NOTHING_WRITTEN,
    READ_FAILED,
    UNKNOWN_OUTCOME,
    OutcomeUnknown,
    ServiceUnavailable,
    database_error,
)


def lost() -> OutcomeUnknown:
    try:
        raise OutcomeUnknown("the COMMIT was sent") from asyncpg.ConnectionDoesNotExistError(
            "connection was closed in the middle of operation"
        )
    except OutcomeUnknown as exc:
        return exc


def test_a_lost_answer_says_the_outcome_is_unknown_and_how_to_learn_it() -> None:
    for write in (True, False):
        error = database_error(lost(), "/api/boards/b/widgets/w", write=write)
        assert isinstance(error, ServiceUnavailable)
        assert (error.status_code, error.code, error.message) == (
            503,
            "unavailable",
            UNKNOWN_OUTCOME,
        )
    assert "unknown" in UNKNOWN_OUTCOME
    assert "Idempotency-Key" in UNKNOWN_OUTCOME
    assert "nothing was written" not in UNKNOWN_OUTCOME


def test_nothing_sent_is_nothing_written_and_a_read_has_no_write_wording() -> None:
    refused = ConnectionRefusedError(111, "Connect call failed")
    write = database_error(refused, "/api/boards", write=True)
    read = database_error(refused, "/api/boards", write=False)
    assert (write.status_code, write.message) == (503, NOTHING_WRITTEN)
    assert (read.status_code, read.message) == (503, READ_FAILED)
    assert "writ" not in READ_FAILED
