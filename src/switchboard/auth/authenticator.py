"""Turning a presented credential into a `Principal`, with a short per-worker cache.

Keys are looked up by their public id and cached for a few seconds; a
revocation evicts the entry at once on every worker (a broker message), and
the cache's TTL bounds the damage if that message is lost.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass

from switchboard.auth.principal import ANONYMOUS, BOOTSTRAP, Principal, Role
from switchboard.auth.tokens import TokenIssuer
from switchboard.errors import Unauthorized
from switchboard.store.db import Database
from switchboard.store.keys import get_key, secret_matches, split_key
from switchboard.store.models import ApiKey


def presented_credential(authorization: str | None, token: str | None) -> str | None:
    """`Authorization: Bearer …`, else `?token=` (browsers cannot set headers on
    WebSocket or EventSource); anything else in `Authorization` is refused."""
    if authorization is not None:
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise Unauthorized("Authorization must be `Bearer <key-or-token>`")
        return value.strip()
    return token


@dataclass(frozen=True, slots=True)
class _Cached:
    key: ApiKey | None
    fetched: float


class Authenticator:
    def __init__(
        self, db: Database, issuer: TokenIssuer, *, admin_key: str | None, cache_ttl: float
    ) -> None:
        self.db = db
        self.issuer = issuer
        self._admin_key = admin_key
        self._ttl = cache_ttl
        self._cache: dict[str, _Cached] = {}

    async def authenticate(self, credential: str | None) -> Principal:
        """Anonymous without a credential; `Unauthorized` for a bad, expired or revoked one."""
        if not credential:
            return ANONYMOUS
        if self._admin_key and hmac.compare_digest(credential.encode(), self._admin_key.encode()):
            return BOOTSTRAP
        parts = split_key(credential)
        if parts is not None:
            key = await self._live_key(parts[0])
            if key is None or not secret_matches(key, parts[1]):
                raise Unauthorized("the API key is not valid or was revoked")
            boards = frozenset(key.boards) if key.boards is not None else None
            return Principal("key", Role(key.role), boards, key_id=key.id)
        if credential.count(".") == 2:
            principal = await self.issuer.verify(credential)
            if principal.key_id is not None and await self._live_key(principal.key_id) is None:
                raise Unauthorized("the key that minted this token was revoked")
            return principal
        raise Unauthorized("the credential is neither an API key nor a viewer token")

    async def _live_key(self, key_id: str) -> ApiKey | None:
        now = time.monotonic()
        cached = self._cache.get(key_id)
        if cached is None or now - cached.fetched > self._ttl:
            async with self.db.read() as session:
                key = await get_key(session, key_id)
            if len(self._cache) > 10_000:
                self._cache.clear()
            cached = self._cache[key_id] = _Cached(key, now)
        key = cached.key
        return key if key is not None and key.revoked_at is None else None

    def forget(self, key_id: str) -> None:
        """A key changed (revoked): look it up again next time."""
        self._cache.pop(key_id, None)
