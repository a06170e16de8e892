"""`Idempotency-Key` on writes, as ASGI middleware around the REST API.

A retried request (same credential, same key, same method, path and body)
gets the first response back byte for byte and writes and publishes nothing.
The key is claimed in the store before the request runs, and marked inside the
write's own transaction together with the response the route built (`api.writes`;
see `store/idempotency.py`), so this holds across workers, across a worker dying
mid-request, and when the answer to the write's COMMIT is lost: the first attempt
is told its outcome is unknown (503), the retry gets the committed result. A 5xx
is never stored: a request that ends in one releases its key unless its write
committed, and a retry then runs it (or replays the write that did commit).

Who may read a stored response back: only the credential that made it. The
credential is authenticated before anything is claimed or replayed (a revoked
key or an expired token replays nothing); the record is stored under a hash of
credential and key, so another caller's same key is a different record; and the
stored body is encrypted under a key derived from the credential, which is
never stored, so the database alone does not reveal it (a created API key's
secret is in such a body).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass

import structlog
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.routing import Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchboard.api.middleware import PRINCIPAL, header, read_body, replay, respond_error
from switchboard.api.routing import RouteTable
from switchboard.auth.authenticator import presented_credential
from switchboard.errors import (
    DATABASE_ERRORS,
    NOTHING_WRITTEN,
    AppError,
    BadRequest,
    Conflict,
    OutcomeUnknown,
    ServiceUnavailable,
    ValidationFailed,
)
from switchboard.state import AppState
from switchboard.store.idempotency import CURRENT_KEY, Answer, IdempotencyStore, Outcome, Pending

log = structlog.get_logger(__name__)

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
KEPT_HEADERS = frozenset({b"content-type", b"etag", b"location"})
MAX_BODY = 16 * 1024 * 1024  # `BodyLimitMiddleware`, outside, holds the configured limit
BOARD_PATH = re.compile(r"/api/boards/([^/]+)")
NONCE = 12
RELEASE_TRIES = 2
"""Attempts to release a claim after a request that wrote nothing (the second on a fresh
connection: the pool drops one that died under the first)."""


@dataclass(frozen=True, slots=True)
class Owner:
    """One credential's view of the store: where its keys live, and its body cipher."""

    namespace: bytes
    cipher: AESGCM

    @classmethod
    def of(cls, credential: str, server_secret: bytes) -> Owner:
        """Both derived with an HMAC under the server's secret: with `SWITCHBOARD_SECRET`
        kept out of the database, a dump does not let anyone test guesses of a weak key."""

        def derive(purpose: bytes) -> bytes:
            message = purpose + b"\0" + credential.encode()
            return hmac.new(server_secret, message, hashlib.sha256).digest()

        return cls(derive(b"idempotency key"), AESGCM(derive(b"idempotency body")))

    def record(self, key: str) -> str:
        return hashlib.sha256(self.namespace + key.encode()).hexdigest()

    def seal(self, body: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self.cipher.encrypt(nonce, body, None)

    def open(self, sealed: bytes) -> bytes:
        return self.cipher.decrypt(sealed[:NONCE], sealed[NONCE:], None)


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.routes = RouteTable(router)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header(scope, b"idempotency-key") if scope["type"] == "http" else None
        # A request no route serves is routing's to answer (404, 405): no key is claimed.
        if key is None or scope["method"] not in WRITE_METHODS or not self.routes.serves(scope):
            await self.app(scope, receive, send)
            return
        try:
            await self._serve(key, scope, receive, send)
        except AppError as exc:
            await respond_error(send, exc)

    async def _serve(self, key: str, scope: Scope, receive: Receive, send: Send) -> None:
        if not KEY_PATTERN.fullmatch(key):
            raise BadRequest("Idempotency-Key must be 1 to 255 printable ASCII characters")
        state: AppState = scope["state"]["switchboard"]
        credential = presented_credential(header(scope, b"authorization"), None)
        if not credential:  # nobody to scope the key to: the route refuses the write itself
            await self.app(scope, receive, send)
            return
        # `Unauthorized`: nothing claimed. The route reuses the principal (`current_principal`).
        scope["state"][PRINCIPAL] = await state.auth.authenticate(credential)
        owner = Owner.of(credential, await state.auth.issuer.secret())
        record = owner.record(key)
        body = await read_body(receive, MAX_BODY)
        digest = hashlib.sha256()
        for part in (scope["method"].encode(), scope["raw_path"], scope["query_string"], body):
            digest.update(len(part).to_bytes(8, "big") + part)
        board = BOARD_PATH.match(scope["path"])
        store = IdempotencyStore(state.db, state.settings.idempotency_ttl)
        pending = Pending(record, owner.seal)
        try:
            claim = await store.claim(record, digest.hexdigest(), board and board[1])
        except DATABASE_ERRORS as exc:
            if isinstance(exc, OutcomeUnknown):  # the claim may be held: let a retry run
                await _release(store, pending, None)
            raise ServiceUnavailable(NOTHING_WRITTEN) from exc  # the write never ran
        match claim.outcome:
            case Outcome.REPLAY:
                headers = [(k.encode(), v.encode()) for k, v in (claim.headers or {}).items()]
                headers.append((b"idempotent-replayed", b"true"))
                await send(
                    {"type": "http.response.start", "status": claim.status, "headers": headers}
                )
                await send({"type": "http.response.body", "body": owner.open(claim.body)})
                return
            case Outcome.MISMATCH:
                raise ValidationFailed(
                    "this Idempotency-Key was already used for a different request"
                )
            case Outcome.IN_PROGRESS:
                raise Conflict("a request with this Idempotency-Key is still in progress")

        status, kept, chunks = 500, dict[str, str](), list[bytes]()
        finished = False

        async def finish() -> None:
            """A write that committed stored its response with it (`api.writes`): nothing
            to do. Otherwise the claim is released (or, committed with its answer lost,
            kept as it is); a 5xx is never stored."""
            nonlocal finished
            finished = True
            if pending.recorded:
                return
            await _release(store, pending, Answer(status, kept, b"".join(chunks)))

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", []):
                    if name.lower() in KEPT_HEADERS:
                        kept[name.decode().lower()] = value.decode()
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    # Released before the client can read the end of it: a retry sent on
                    # this response would otherwise find the key still in progress (409).
                    await finish()
            await send(message)

        token = CURRENT_KEY.set(pending)
        try:
            await self.app(scope, replay(body, receive), capture)
        finally:
            CURRENT_KEY.reset(token)
            if not finished:  # no whole response: an error, or the client went away
                await finish()


async def _release(store: IdempotencyStore, pending: Pending, answer: Answer | None) -> None:
    """`IdempotencyStore.finish` after a request not seen to commit, tried `RELEASE_TRIES`
    times; a 5xx `answer` is never stored. If it cannot reach the database, the claim
    stays and a retry is answered 409 until it is stale (`STALE_CLAIM`)."""
    kept = answer if answer is not None and answer.status < 500 else None
    for attempt in range(1, RELEASE_TRIES + 1):
        try:
            await store.finish(pending, kept)
            return
        except DATABASE_ERRORS as exc:
            log.warning("idempotency_release_failed", attempt=attempt, error=repr(exc))
