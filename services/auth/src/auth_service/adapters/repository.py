"""Repositories and the unit of work of the auth service."""

from __future__ import annotations

import base64
import datetime as dt

from servicekit.db import SqlUnitOfWork
from servicekit.errors import AlreadyExists
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth_service.adapters.tables import RefreshTokenRow, SessionRow, SigningKeyRow, UserRow
from auth_service.domain import KeyState, RefreshRecord, Session, SigningKey, User


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        password_hash=row.password_hash,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


def _session(row: SessionRow) -> Session:
    return Session(
        id=row.id,
        user_id=row.user_id,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        idle_expires_at=row.idle_expires_at,
        absolute_expires_at=row.absolute_expires_at,
        auth_time=row.auth_time,
        client_ip=row.client_ip,
        aal=row.aal,
        amr=tuple(m for m in row.amr.split(",") if m),
        revoked_at=row.revoked_at,
        revoke_reason=row.revoke_reason,
    )


def _refresh(row: RefreshTokenRow) -> RefreshRecord:
    return RefreshRecord(
        id=row.id,
        session_id=row.session_id,
        hash=row.token_hash,
        created_at=row.created_at,
        rotated_at=row.rotated_at,
        child_id=row.child_id,
        sealed_child=row.sealed_child,
    )


def _key(row: SigningKeyRow) -> SigningKey:
    return SigningKey(
        kid=row.kid,
        state=KeyState(row.state),
        public_key=base64.urlsafe_b64decode(row.public_key + "=" * (-len(row.public_key) % 4)),
        sealed_private_key=row.sealed_private_key,
        created_at=row.created_at,
        activated_at=row.activated_at,
        retired_at=row.retired_at,
        verify_until=row.verify_until,
    )


def _rowcount(result: object) -> int:
    assert isinstance(result, CursorResult)
    return int(result.rowcount)


class UserRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, user_id: str) -> User | None:
        row = await self.session.get(UserRow, user_id)
        return _user(row) if row else None

    async def by_email(self, email: str) -> User | None:
        row = (
            await self.session.execute(select(UserRow).where(UserRow.email == email))
        ).scalar_one_or_none()
        return _user(row) if row else None

    async def add(self, user: User) -> None:
        self.session.add(
            UserRow(
                id=user.id,
                email=user.email,
                display_name=user.display_name,
                password_hash=user.password_hash,
                created_at=user.created_at,
                updated_at=user.updated_at,
                deleted_at=user.deleted_at,
            )
        )
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
        stmt = (
            update(UserRow)
            .where(UserRow.id == user_id, UserRow.password_hash == expected)
            .values(password_hash=new, updated_at=now)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def mark_deleted(self, user_id: str, now: dt.datetime) -> None:
        stmt = update(UserRow).where(UserRow.id == user_id).values(deleted_at=now, updated_at=now)
        await self.session.execute(stmt)


class SessionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, session_id: str) -> Session | None:
        row = await self.session.get(SessionRow, session_id)
        return _session(row) if row else None

    async def add(self, s: Session) -> None:
        self.session.add(
            SessionRow(
                id=s.id,
                user_id=s.user_id,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                idle_expires_at=s.idle_expires_at,
                absolute_expires_at=s.absolute_expires_at,
                auth_time=s.auth_time,
                client_ip=s.client_ip,
                aal=s.aal,
                amr=",".join(s.amr),
                revoked_at=s.revoked_at,
                revoke_reason=s.revoke_reason,
            )
        )
        await self.session.flush()

    async def save(self, s: Session) -> None:
        stmt = (
            update(SessionRow)
            .where(SessionRow.id == s.id)
            .values(
                last_used_at=s.last_used_at,
                idle_expires_at=s.idle_expires_at,
                revoked_at=s.revoked_at,
                revoke_reason=s.revoke_reason,
            )
        )
        await self.session.execute(stmt)

    async def revoke_all(
        self, user_id: str, now: dt.datetime, reason: str, *, keep: str = ""
    ) -> int:
        stmt = (
            update(SessionRow)
            .where(
                SessionRow.user_id == user_id,
                SessionRow.revoked_at.is_(None),
                SessionRow.id != keep,
            )
            .values(revoked_at=now, revoke_reason=reason)
        )
        return _rowcount(await self.session.execute(stmt))

    async def list_active(
        self, user_id: str, now: dt.datetime, after: tuple[dt.datetime, str] | None, limit: int
    ) -> list[Session]:
        """Active sessions, newest first, strictly after the ``(created_at, id)`` cursor."""
        stmt = select(SessionRow).where(
            SessionRow.user_id == user_id,
            SessionRow.revoked_at.is_(None),
            SessionRow.idle_expires_at > now,
            SessionRow.absolute_expires_at > now,
        )
        if after is not None:
            created, sid = after
            stmt = stmt.where(
                or_(
                    SessionRow.created_at < created,
                    and_(SessionRow.created_at == created, SessionRow.id < sid),
                )
            )
        stmt = stmt.order_by(SessionRow.created_at.desc(), SessionRow.id.desc()).limit(limit)
        return [_session(r) for r in (await self.session.execute(stmt)).scalars()]


class RefreshTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, token_id: str) -> RefreshRecord | None:
        row = await self.session.get(RefreshTokenRow, token_id, populate_existing=True)
        return _refresh(row) if row else None

    async def by_hash(self, digest: str) -> RefreshRecord | None:
        stmt = select(RefreshTokenRow).where(RefreshTokenRow.token_hash == digest)
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _refresh(row) if row else None

    async def add(self, record: RefreshRecord) -> None:
        self.session.add(
            RefreshTokenRow(
                id=record.id,
                session_id=record.session_id,
                token_hash=record.hash,
                created_at=record.created_at,
                rotated_at=record.rotated_at,
                child_id=record.child_id,
                sealed_child=record.sealed_child,
            )
        )
        await self.session.flush()

    async def claim(
        self, token_id: str, now: dt.datetime, child_id: str, sealed_child: str
    ) -> bool:
        """Atomically mark an unrotated token rotated; exactly one concurrent caller gets True."""
        stmt = (
            update(RefreshTokenRow)
            .where(RefreshTokenRow.id == token_id, RefreshTokenRow.rotated_at.is_(None))
            .values(rotated_at=now, child_id=child_id, sealed_child=sealed_child)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def forget_grace_secrets(self, rotated_before: dt.datetime, session_id: str = "") -> int:
        """Drop the sealed children whose grace window has ended."""
        stmt = update(RefreshTokenRow).where(
            RefreshTokenRow.sealed_child.is_not(None), RefreshTokenRow.rotated_at < rotated_before
        )
        if session_id:
            stmt = stmt.where(RefreshTokenRow.session_id == session_id)
        stmt = stmt.values(sealed_child=None).execution_options(synchronize_session=False)
        return _rowcount(await self.session.execute(stmt))


class SigningKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> list[SigningKey]:
        stmt = select(SigningKeyRow).order_by(SigningKeyRow.created_at, SigningKeyRow.kid)
        return [_key(r) for r in (await self.session.execute(stmt)).scalars()]

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
        self.session.add(
            SigningKeyRow(
                kid=key.kid,
                state=key.state.value,
                public_key=base64.urlsafe_b64encode(key.public_key).decode().rstrip("="),
                sealed_private_key=key.sealed_private_key,
                created_at=key.created_at,
                activated_at=key.activated_at,
                retired_at=key.retired_at,
                verify_until=key.verify_until,
            )
        )
        await self.session.flush()

    async def save(self, key: SigningKey) -> None:
        stmt = (
            update(SigningKeyRow)
            .where(SigningKeyRow.kid == key.kid)
            .values(
                state=key.state.value,
                activated_at=key.activated_at,
                retired_at=key.retired_at,
                verify_until=key.verify_until,
            )
        )
        await self.session.execute(stmt)

    async def remove(self, kid: str) -> None:
        await self.session.execute(delete(SigningKeyRow).where(SigningKeyRow.kid == kid))


class AuthUnitOfWork(SqlUnitOfWork):
    users: UserRepository
    sessions: SessionRepository
    refresh_tokens: RefreshTokenRepository
    signing_keys: SigningKeyRepository

    def _bind(self, session: AsyncSession) -> None:
        self.users = UserRepository(session)
        self.sessions = SessionRepository(session)
        self.refresh_tokens = RefreshTokenRepository(session)
        self.signing_keys = SigningKeyRepository(session)
