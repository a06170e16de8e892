"""Viewer tokens: short-lived signed JWTs (HS256) a key mints for a browser.

A token never carries more than the key that minted it — the same role or a
lower one, the same boards or fewer — and it dies with that key: every use
checks that the minting key is still live. Tokens travel in URLs, so they are
`read` or `write` only: managing keys always takes a key itself. A token the
bootstrap key (`SWITCHBOARD_ADMIN_KEY`) minted carries an HMAC of that key and
dies when the key is rotated or unset.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable

import jwt

from switchboard.auth.principal import Principal, Role
from switchboard.errors import Forbidden, Unauthorized

ALGORITHM = "HS256"
TOKEN_TYPE = "sb-viewer"
TOKEN_ROLES = frozenset({Role.READ, Role.WRITE})
BOOTSTRAP_SUBJECT = "bootstrap"


class TokenIssuer:
    """Signs and checks tokens; the secret is loaded on first use (the store may be down
    when the worker starts)."""

    def __init__(
        self, load_secret: Callable[[], Awaitable[str]], *, admin_key: str | None = None
    ) -> None:
        self._load_secret = load_secret
        self._secret: str | None = None
        self._admin_key = admin_key

    async def _bootstrap_binding(self) -> str | None:
        """Which bootstrap key a token came from, without revealing it (an HMAC under the
        signing secret, so a weak admin key cannot be guessed offline from a token)."""
        if not self._admin_key:
            return None
        binding = hmac.new(await self.secret(), self._admin_key.encode(), hashlib.sha256)
        return binding.hexdigest()[:32]

    async def secret(self) -> bytes:
        """The deployment's signing secret, also the key of other server-side MACs (so that
        a database dump alone does not let anyone test guesses of a weak credential)."""
        return (await self._key()).encode()

    async def _key(self) -> str:
        if self._secret is None:
            self._secret = await self._load_secret()
        return self._secret

    async def mint(
        self, minter: Principal, *, role: Role, boards: list[str] | None, ttl: int
    ) -> tuple[str, int]:
        """A token for `minter`'s boards (or fewer) at `role` (or lower); and its expiry."""
        if minter.kind == "anonymous":
            raise Unauthorized("minting a token needs an API key")
        if minter.kind == "token":
            raise Forbidden("tokens are minted with an API key, not with another token")
        if role not in TOKEN_ROLES:
            raise Forbidden("viewer tokens are `read` or `write`; managing keys needs a key")
        if not minter.at_least(role):
            raise Forbidden(f"a {minter.role} credential cannot mint a {role} token")
        if minter.boards is not None:
            if boards is None:
                boards = sorted(minter.boards)
            elif not set(boards) <= minter.boards:
                raise Forbidden("a token cannot cover boards outside its key's scope")
        now = int(time.time())
        expires = now + ttl
        claims = {
            "typ": TOKEN_TYPE,
            "sub": minter.key_id or BOOTSTRAP_SUBJECT,
            "role": role.value,
            "boards": sorted(set(boards)) if boards is not None else None,
            "iat": now,
            "exp": expires,
        }
        if minter.key_id is None:
            claims["bk"] = await self._bootstrap_binding()
        return jwt.encode(claims, await self._key(), algorithm=ALGORITHM), expires

    async def verify(self, token: str) -> Principal:
        """The token's principal; `Unauthorized` if it is forged, malformed or expired."""
        try:
            claims = jwt.decode(
                token,
                await self._key(),
                algorithms=[ALGORITHM],
                options={"require": ["exp", "sub", "role", "typ"]},
            )
            if claims["typ"] != TOKEN_TYPE or Role(claims["role"]) not in TOKEN_ROLES:
                raise jwt.InvalidTokenError("not a viewer token")
            boards = claims.get("boards")
            principal = Principal(
                "token",
                Role(claims["role"]),
                frozenset(str(b) for b in boards) if boards is not None else None,
                key_id=None if claims["sub"] == BOOTSTRAP_SUBJECT else str(claims["sub"]),
                expires_at=float(claims["exp"]),
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise Unauthorized("the token is not valid") from None
        if principal.key_id is None:
            binding = await self._bootstrap_binding()
            if binding is None or not hmac.compare_digest(str(claims.get("bk")), binding):
                raise Unauthorized("the bootstrap key that minted this token was rotated")
        return principal
