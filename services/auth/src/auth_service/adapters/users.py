"""The users and their single-use account tokens (verification, reset, email change)."""

from __future__ import annotations

import datetime as dt

from servicekit.errors import AlreadyExists
from servicekit.rows import columns, from_row, rowcount
from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.exc import IntegrityError

from auth_service.adapters.statements import SqlRepository, changed, consume_once
from auth_service.adapters.tables import (
    AccountTokenRow,
    MfaChallengeRow,
    RecoveryCodeRow,
    RefreshTokenRow,
    SessionRow,
    TotpFactorRow,
    UserRow,
)
from auth_service.domain import User
from auth_service.domain.account_token import AccountToken


class UserRepository(SqlRepository):
    async def get(self, user_id: str) -> User | None:
        row = await self.session.get(UserRow, user_id)
        return from_row(User, row) if row else None

    async def by_email(self, email: str) -> User | None:
        row = (
            await self.session.execute(select(UserRow).where(UserRow.email == email))
        ).scalar_one_or_none()
        return from_row(User, row) if row else None

    async def add(self, user: User) -> None:
        self.session.add(UserRow(**columns(user)))
        try:
            await self.session.flush()
        except IntegrityError:
            raise AlreadyExists(
                "that email address is already registered", reason="EMAIL_TAKEN"
            ) from None

    async def replace_password_hash(
        self, user_id: str, expected: str, new: str, now: dt.datetime
    ) -> bool:
        """Compare-and-set, so a concurrent password change is never overwritten by a re-hash."""
        return await self._update(
            user_id, now, UserRow.password_hash == expected, password_hash=new
        )

    async def set_password_hash(self, user_id: str, new: str, now: dt.datetime) -> bool:
        """Unconditionally (a reset does not know the old password); False if no live user."""
        return await self._update(user_id, now, UserRow.deleted_at.is_(None), password_hash=new)

    async def mark_verified(self, user_id: str, email: str, now: dt.datetime) -> bool:
        """Mark ``email`` verified, only while it is still the user's address."""
        return await self._update(
            user_id,
            now,
            UserRow.email == email,
            UserRow.deleted_at.is_(None),
            email_verified_at=now,
        )

    async def change_email(self, user_id: str, email: str, now: dt.datetime) -> bool:
        """Move the user to ``email`` (already verified); False when it is taken meanwhile."""
        try:
            async with self.session.begin_nested():
                return await self._update(
                    user_id, now, UserRow.deleted_at.is_(None), email=email, email_verified_at=now
                )
        except IntegrityError:
            return False

    async def deleted_before(self, cutoff: dt.datetime, limit: int) -> list[str]:
        """Ids of deleted, not yet erased accounts whose deletion is older than ``cutoff``."""
        stmt = (
            select(UserRow.id)
            .where(
                UserRow.deleted_at.is_not(None),
                UserRow.deleted_at < cutoff,
                UserRow.purged_at.is_(None),
            )
            .order_by(UserRow.deleted_at)
            .limit(limit)
        )
        return list((await self.session.execute(stmt)).scalars())

    async def erase(self, user_id: str, now: dt.datetime) -> bool:
        """Replace the personal data by a tombstone (the address is freed); the id stays."""
        erased = await self._update(
            user_id,
            now,
            UserRow.purged_at.is_(None),
            email=f"{user_id}@deleted.invalid",
            display_name="",
            password_hash="!",  # noqa: S106 - no hash: no password opens it
            email_verified_at=None,
            purged_at=now,
        )
        if not erased:
            return False
        sessions = select(SessionRow.id).where(SessionRow.user_id == user_id)
        await self.session.execute(
            delete(RefreshTokenRow).where(RefreshTokenRow.session_id.in_(sessions))
        )
        for table in (
            SessionRow,
            TotpFactorRow,
            RecoveryCodeRow,
            MfaChallengeRow,
            AccountTokenRow,
        ):
            await self.session.execute(delete(table).where(table.user_id == user_id))
        return True

    async def mark_deleted(self, user_id: str, now: dt.datetime) -> None:
        await self._update(user_id, now, deleted_at=now)

    async def _update(
        self, user_id: str, now: dt.datetime, *where: ColumnElement[bool], **values: object
    ) -> bool:
        """Change the user's row where ``where`` holds, stamping ``updated_at``; True if it did."""
        stmt = update(UserRow).where(UserRow.id == user_id, *where).values(updated_at=now, **values)
        return rowcount(await self.session.execute(stmt)) == 1


class AccountTokenRepository(SqlRepository):
    async def add(self, t: AccountToken) -> None:
        self.session.add(AccountTokenRow(**columns(t)))
        await self.session.flush()

    async def by_hash(self, digest: str, purpose: str) -> AccountToken | None:
        stmt = select(AccountTokenRow).where(
            AccountTokenRow.token_hash == digest, AccountTokenRow.purpose == purpose
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return from_row(AccountToken, row) if row else None

    async def consume(self, token_id: str, now: dt.datetime) -> bool:
        """Single use: of concurrent callers exactly one sees True."""
        return await consume_once(self.session, AccountTokenRow, token_id, now)

    async def retire(self, user_id: str, purposes: tuple[str, ...], now: dt.datetime) -> int:
        """Spend every live token of the user for ``purposes`` (a newer one supersedes them)."""
        stmt = (
            update(AccountTokenRow)
            .where(
                AccountTokenRow.user_id == user_id,
                AccountTokenRow.purpose.in_(purposes),
                AccountTokenRow.consumed_at.is_(None),
            )
            .values(consumed_at=now)
        )
        return await changed(self.session, stmt)

    async def purge(self, before: dt.datetime) -> int:
        stmt = delete(AccountTokenRow).where(AccountTokenRow.expires_at < before)
        return rowcount(await self.session.execute(stmt))
