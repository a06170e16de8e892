"""Redaction before truncation: a WebSocket frame, a handshake header and a configured
credential of any shape never reach a formatted log line, whole or in part."""

from __future__ import annotations

import logging
import secrets

from websockets.frames import Frame, Opcode

from switchboard.config import Settings
from switchboard_client.redaction import RedactCredentials, describe_frame, redact, register_secret


def _formatted(msg: str, *args: object) -> str:
    record = logging.LogRecord("uvicorn.error", logging.DEBUG, __file__, 1, msg, args, None)
    RedactCredentials().filter(record)
    return record.getMessage()


def test_an_auth_frame_is_logged_without_its_credential_whatever_its_shape() -> None:
    for credential in ("x" * 40, f"sbk_abc123_{secrets.token_urlsafe(32)}", "a.b.c" * 30):
        frame = Frame(Opcode.TEXT, f'{{"type":"auth","token":"{credential}","id":"1"}}'.encode())
        line = _formatted("< %s", frame)
        assert line == '< TEXT \'{"type":"auth","token":"[redacted]","id":"1"}\' ' + (
            f"[{len(frame.data)} bytes]"
        )


def test_a_frame_cut_short_or_in_pieces_shows_no_credential() -> None:
    secret = secrets.token_urlsafe(40)
    broken = Frame(Opcode.TEXT, f'{{"type":"auth","token":"{secret}'.encode())
    assert secret[:8] not in describe_frame(broken)
    assert secret[-8:] not in describe_frame(broken)
    piece = Frame(Opcode.CONT, secret.encode(), fin=True)
    assert describe_frame(piece) == f"CONT (not shown) [{len(secret)} bytes]"
    first = Frame(Opcode.TEXT, f'{{"type":"auth","token":"{secret}'.encode(), fin=False)
    assert describe_frame(first) == f"TEXT (not shown) [{len(first.data)} bytes]"


def test_a_long_frame_is_cut_after_redaction() -> None:
    secret = secrets.token_urlsafe(40)
    frame = Frame(Opcode.TEXT, f'{{"type":"auth","pad":"{"p" * 500}","token":"{secret}"}}'.encode())
    line = describe_frame(frame)
    assert len(line) < 260
    assert '"token":"[redacted]"' in line
    assert not any(secret[i : i + 8] in line for i in range(len(secret) - 7))


def test_a_credential_header_is_logged_without_its_value() -> None:
    assert _formatted("< %s: %s", "Cookie", "session=abc") == "< Cookie: [redacted]"
    assert _formatted("> %s: %s", "Authorization", "Basic Zm9vOmJhcg==") == (
        "> Authorization: [redacted]"
    )
    assert _formatted("< %s: %s", "Host", "example.com") == "< Host: example.com"


def test_a_configured_credential_is_replaced_wherever_it_appears() -> None:
    odd = f"odd~{secrets.token_urlsafe(20)}"
    register_secret(odd)
    assert (
        redact(f"as text {odd}, in a URL /x?k={odd}")
        == "as text [redacted], in a URL /x?k=[redacted]"
    )
    assert odd not in _formatted("%s", f"key={odd}")


def test_every_configured_secret_is_named_for_the_logs() -> None:
    settings = Settings(
        database_url="postgresql+asyncpg://sb:store-password@db/sb",
        broker_url="redis://:broker-password@redis:6379/0",
        admin_key="the-admin-key",
        secret="the-signing-secret",
    )
    assert set(settings.credentials) == {
        "the-admin-key",
        "the-signing-secret",
        "store-password",
        "broker-password",
    }
