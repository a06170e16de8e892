"""Who is calling, and what they may do: one place for every authorization rule.

Rules: public boards are readable by anyone; a credential reads and writes only
the boards in its scope (all, or its list); `read` never writes; key management
needs an unscoped `admin`. A board outside the caller's scope answers 404, as
if it did not exist, so a board-limited key cannot learn other boards' names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from switchboard.errors import Forbidden, NotFound, Unauthorized


class Role(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Role.READ: 1, Role.WRITE: 2, Role.ADMIN: 3}

Kind = Literal["anonymous", "key", "token", "bootstrap"]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Kind
    role: Role | None = None
    boards: frozenset[str] | None = None
    """The boards in scope; None means every board."""
    key_id: str | None = None
    """The API key behind the credential (a token's minting key), for revocation."""
    expires_at: float | None = None
    """Epoch seconds after which the credential stops working (tokens)."""

    @property
    def identity(self) -> str:
        """Who this is, for presence, limits and logs: never a secret."""
        if self.kind in ("anonymous", "bootstrap"):
            return self.kind
        return f"{self.kind}:{self.key_id or 'bootstrap'}"

    @property
    def family(self) -> str:
        """The credential family, for the write budget its members share: an API key and
        every token minted from it are one (`key:<id>`), the bootstrap key and its tokens
        another (`bootstrap`). Never a secret."""
        if self.kind == "anonymous":
            return self.kind
        return f"key:{self.key_id}" if self.key_id else "bootstrap"

    def at_least(self, role: Role) -> bool:
        return self.role is not None and self.role.rank >= role.rank

    def in_scope(self, slug: str) -> bool:
        return self.role is not None and (self.boards is None or slug in self.boards)

    def can_read(self, slug: str, public: bool) -> bool:
        return public or self.in_scope(slug)

    def require_read(self, slug: str, public: bool) -> None:
        if not self.can_read(slug, public):
            raise NotFound(f"board {slug!r} not found")

    def require_write(self, slug: str) -> None:
        """Checked before touching the store: no credential, no scope, or read-only → refused."""
        if self.role is None:
            raise Unauthorized("this request needs a credential (Authorization: Bearer …)")
        if not self.in_scope(slug):
            raise NotFound(f"board {slug!r} not found")
        if not self.at_least(Role.WRITE):
            raise Forbidden("this credential may only read")

    def require_admin(self) -> None:
        if self.role is None:
            raise Unauthorized("this request needs a credential (Authorization: Bearer …)")
        if self.role is not Role.ADMIN or self.boards is not None:
            raise Forbidden("this needs an admin key that is not limited to boards")


ANONYMOUS = Principal("anonymous")
BOOTSTRAP = Principal("bootstrap", Role.ADMIN)
"""`SWITCHBOARD_ADMIN_KEY`: an unscoped admin that lives in the environment, not the store."""
