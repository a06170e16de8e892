"""`/api/keys` and `/api/tokens`: managing API keys (admin), minting viewer tokens (any key)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, Field, field_validator

from switchboard.api.deps import Caller, State
from switchboard.api.openapi import errors
from switchboard.api.schemas import Slug, StrictIn
from switchboard.api.writes import respond, write
from switchboard.auth.principal import Role
from switchboard.store import keys
from switchboard.store.models import ApiKey
from switchboard.timefmt import iso

router = APIRouter(tags=["credentials"])
log = structlog.get_logger(__name__)

KeyId = Annotated[str, Path(pattern=r"^[a-z0-9]{1,32}$")]


RoleIn = Annotated[Role, Field(strict=False)]  # JSON carries the role as its string
TokenRole = Literal[Role.READ, Role.WRITE]
"""`TOKEN_ROLES`, as the document's enum: tokens travel in URLs, so they never manage keys."""


class KeyCreate(StrictIn):
    role: RoleIn
    boards: list[Slug] | None = Field(default=None, max_length=1000)
    """Limit the key to these boards; omit for every board."""
    name: str = Field(default="", max_length=200)


class KeyOut(BaseModel):
    id: str
    prefix: str
    """How the key starts, to recognise it; the secret is never shown again."""
    role: Role
    boards: list[str] | None
    name: str
    created_at: str
    revoked_at: str | None


class KeyCreated(KeyOut):
    key: str
    """The whole key: shown once, in this response only."""


class KeyList(BaseModel):
    items: list[KeyOut]


class TokenCreate(StrictIn):
    role: TokenRole = Role.READ
    """`read` or `write`: tokens travel in URLs, so they never manage keys."""
    boards: list[Slug] | None = Field(default=None, max_length=1000)
    ttl: int | None = Field(default=None, ge=1)
    """Seconds until the token expires (default 900; capped by SWITCHBOARD_TOKEN_TTL_MAX)."""

    @field_validator("role", mode="before")
    @classmethod
    def _viewer_role(cls, role: object) -> object:
        """Says why, before the enum's own refusal."""
        if role == Role.ADMIN:
            raise ValueError("viewer tokens are `read` or `write`; managing keys needs a key")
        return role


class TokenOut(BaseModel):
    token: str
    role: TokenRole
    boards: list[str] | None
    expires_at: str


def key_out(key: ApiKey) -> KeyOut:
    return KeyOut(
        id=key.id,
        prefix=f"{keys.KEY_PREFIX}{key.id}_",
        role=Role(key.role),
        boards=key.boards,
        name=key.name,
        created_at=iso(key.created_at),
        revoked_at=iso(key.revoked_at) if key.revoked_at else None,
    )


@router.post(
    "/keys", status_code=status.HTTP_201_CREATED, response_model=KeyCreated, responses=errors(403)
)
async def create_key(body: KeyCreate, state: State, caller: Caller) -> Response:
    """A new API key (admin only); its secret is in this response and never again (but
    to a retry of this request with its `Idempotency-Key`, by the same caller)."""
    caller.require_admin()
    async with write(state) as tx:
        new = await keys.create_key(tx, role=body.role.value, boards=body.boards, name=body.name)
        created = KeyCreated(**key_out(new.key).model_dump(), key=new.secret)
        response = respond(created, status=status.HTTP_201_CREATED)
    log.info("key_created", key_id=new.key.id, role=new.key.role, by=caller.identity)
    return response


@router.get("/keys", responses=errors(403))
async def list_keys(state: State, caller: Caller) -> KeyList:
    """Every API key, revoked ones included, without their secrets (admin only)."""
    caller.require_admin()
    async with state.db.read() as session:
        rows = await keys.list_keys(session)
    return KeyList(items=[key_out(k) for k in rows])


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(403, 404))
async def revoke_key(key_id: KeyId, state: State, caller: Caller) -> Response:
    """Revoke at once, on every worker; its open connections are closed with 4101."""
    caller.require_admin()
    async with write(state) as tx:
        await keys.revoke_key(tx, key_id)
        response = respond(None, status=status.HTTP_204_NO_CONTENT)
    log.info("key_revoked", key_id=key_id, by=caller.identity)
    await state.revocations.announce(key_id)
    return response


@router.post("/tokens", status_code=status.HTTP_201_CREATED, responses=errors(403))
async def mint_token(body: TokenCreate, state: State, caller: Caller) -> TokenOut:
    """A short-lived token for a browser, never allowing more than the key that mints it."""
    ttl = min(body.ttl or state.settings.token_ttl, state.settings.token_ttl_max)
    token, expires = await state.auth.issuer.mint(
        caller, role=body.role, boards=body.boards, ttl=ttl
    )
    claims_boards = body.boards if body.boards is not None else caller.boards
    return TokenOut(
        token=token,
        role=body.role,
        boards=sorted(claims_boards) if claims_boards is not None else None,
        expires_at=iso(datetime.fromtimestamp(expires, UTC)),
    )
