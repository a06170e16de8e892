"""API keys and generated settings in the store.

A key reads `sbk_<id>_<secret>`: the id is stored in clear (it names the key in
lists and logs), the secret only as its SHA-256 — the secret is 256 random
bits, so a fast hash is enough and lookups stay cheap.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from switchboard.errors import NotFound
from switchboard.store.db import Database, Tx
from switchboard.store.models import ApiKey, Setting, utcnow

KEY_PREFIX = "sbk_"


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key just created: the only moment its secret exists outside the client."""

    key: ApiKey
    secret: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(credential: str) -> tuple[str, str] | None:
    """`(id, secret)` of something shaped like one of our keys, else None."""
    if not credential.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = credential[len(KEY_PREFIX) :].partition("_")
    if not sep or not key_id.isalnum() or len(key_id) > 32 or not secret:
        return None
    return key_id, secret


def secret_matches(key: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(key.secret_hash, _hash(secret))


async def create_key(tx: Tx, *, role: str, boards: list[str] | None, name: str = "") -> NewKey:
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        id=key_id,
        secret_hash=_hash(secret),
        role=role,
        boards=sorted(set(boards)) if boards is not None else None,
        name=name,
        created_at=utcnow(),
    )
    tx.session.add(key)
    await tx.session.flush()
    return NewKey(key, f"{KEY_PREFIX}{key_id}_{secret}")


async def get_key(session: AsyncSession, key_id: str) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list(await session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


async def revoke_key(tx: Tx, key_id: str) -> ApiKey:
    key = await tx.session.get(ApiKey, key_id, with_for_update=True)
    if key is None:
        raise NotFound(f"key {key_id!r} not found")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
    return key


async def revoked_among(session: AsyncSession, key_ids: list[str]) -> set[str]:
    """Which of these keys are revoked or gone (for open connections' periodic check)."""
    live = await session.scalars(
        select(ApiKey.id).where(ApiKey.id.in_(key_ids), ApiKey.revoked_at.is_(None))
    )
    return set(key_ids) - set(live)


async def count_keys(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(ApiKey)) or 0)


async def claim_setting(db: Database, name: str, make: Callable[[], str]) -> tuple[str, bool]:
    """The shared value of `name`, creating it with `make()` if no worker has yet.

    Returns `(value, created_here)`; concurrent workers agree on one value.
    """
    try:
        async with db.transaction() as tx:
            existing = await tx.session.get(Setting, name)
            if existing is not None:
                return existing.value, False
            value = make()
            tx.session.add(Setting(name=name, value=value))
        return value, True
    except IntegrityError:
        async with db.read() as session:
            row = await session.get(Setting, name)
            assert row is not None
            return row.value, False


async def bootstrap_admin_key(db: Database) -> str | None:
    """On a store with no keys ever made, create the first admin key and return its secret.

    One transaction marks the bootstrap done and creates the key, so of several
    workers starting together exactly one makes it (the others hit the marker).
    """
    try:
        async with db.transaction() as tx:
            if await tx.session.get(Setting, "bootstrap_admin") is not None:
                return None
            if await count_keys(tx.session):
                return None
            tx.session.add(Setting(name="bootstrap_admin", value=utcnow().isoformat()))
            new = await create_key(tx, role="admin", boards=None, name="bootstrap admin")
        return new.secret
    except IntegrityError:
        return None
