"""The JWT signing keys (the JWKS) and the sealed secrets (peppers) auth keeps in its database."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from servicekit.rows import columns, from_row
from sqlalchemy import Row, delete, select

from auth_service.adapters.statements import SqlRepository, insert_ignoring_conflict, saving
from auth_service.adapters.tables import AuthSecretRow, SigningKeyRow
from auth_service.domain import KeyState, SigningKey

# GetJwks's read as a Core statement built once (no ORM loading or building per call)
_SIGNING_KEYS = SigningKeyRow.__table__
_ALL_SIGNING_KEYS = select(_SIGNING_KEYS).order_by(_SIGNING_KEYS.c.created_at, _SIGNING_KEYS.c.kid)
# what a save writes: a key's move through next → current → retired (its material never changes)
_KEY_CHANGES = ("state", "activated_at", "retired_at", "verify_until")


def _key(row: SigningKeyRow | Row[Any]) -> SigningKey:
    """From an ORM row or a Core row of the signing_keys table (same names)."""
    public_key = base64.urlsafe_b64decode(row.public_key + "=" * (-len(row.public_key) % 4))
    return from_row(SigningKey, row, state=KeyState(row.state), public_key=public_key)


class SigningKeyRepository(SqlRepository):
    async def all(self) -> list[SigningKey]:
        return [_key(r) for r in await self.session.execute(_ALL_SIGNING_KEYS)]

    async def current(self) -> SigningKey | None:
        stmt = (
            select(SigningKeyRow)
            .where(SigningKeyRow.state == KeyState.CURRENT.value)
            .order_by(SigningKeyRow.activated_at.desc(), SigningKeyRow.kid.desc())
            .limit(1)
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _key(row) if row else None

    async def add(self, key: SigningKey) -> None:
        public_key = base64.urlsafe_b64encode(key.public_key).decode().rstrip("=")
        self.session.add(
            SigningKeyRow(**columns(key, state=key.state.value, public_key=public_key))
        )
        await self.session.flush()

    async def save(self, key: SigningKey) -> None:
        stmt = saving(SigningKeyRow, key, _KEY_CHANGES, by=("kid",), state=key.state.value)
        await self.session.execute(stmt)

    async def remove(self, kid: str) -> None:
        await self.session.execute(delete(SigningKeyRow).where(SigningKeyRow.kid == kid))


class SecretRepository(SqlRepository):
    async def get(self, name: str) -> str | None:
        row = await self.session.get(AuthSecretRow, name)
        return row.sealed_value if row else None

    async def add_if_absent(self, name: str, sealed: str, now: dt.datetime) -> None:
        stmt = insert_ignoring_conflict(
            self.session,
            AuthSecretRow,
            {"name": name, "sealed_value": sealed, "created_at": now},
        )
        await self.session.execute(stmt)
