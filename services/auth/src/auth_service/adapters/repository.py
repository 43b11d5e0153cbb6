"""Repositories and the unit of work of the auth service."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable
from typing import Any

from servicekit.audit import AuditEvent
from servicekit.db import SqlUnitOfWork
from servicekit.errors import AlreadyExists
from servicekit.mail import Mail, MailOutbox
from servicekit.outbox import OutboxRepository
from sqlalchemy import Row, and_, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import Executable

from auth_service.adapters.tables import (
    AUDIT_OUTBOX,
    CHANGE_LOG,
    AccountTokenRow,
    AuthSecretRow,
    Base,
    DeploymentPinRow,
    MfaChallengeRow,
    RecoveryCodeRow,
    RefreshTokenRow,
    SessionRow,
    SigningKeyRow,
    ThrottleRow,
    TotpFactorRow,
    UserRow,
)
from auth_service.domain import (
    DeploymentPin,
    KeyState,
    MfaChallenge,
    RefreshRecord,
    Session,
    SigningKey,
    ThrottleState,
    TotpFactor,
    User,
)
from auth_service.domain.account_token import AccountToken


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        email=row.email,
        display_name=row.display_name,
        password_hash=row.password_hash,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
        email_verified_at=row.email_verified_at,
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


# GetJwks's read as a Core statement built once (no ORM loading or building per call)
_SIGNING_KEYS = SigningKeyRow.__table__
_ALL_SIGNING_KEYS = select(_SIGNING_KEYS).order_by(_SIGNING_KEYS.c.created_at, _SIGNING_KEYS.c.kid)


def _key(row: SigningKeyRow | Row[Any]) -> SigningKey:
    """From an ORM row or a Core row of the signing_keys table (same names)."""
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


# The change feed's topic (servicekit.changefeed): a session was revoked (key: its id).
TOPIC_SESSION = "session"


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
                email_verified_at=user.email_verified_at,
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

    async def set_password_hash(self, user_id: str, new: str, now: dt.datetime) -> bool:
        """Unconditionally (a reset does not know the old password); False if no live user."""
        stmt = (
            update(UserRow)
            .where(UserRow.id == user_id, UserRow.deleted_at.is_(None))
            .values(password_hash=new, updated_at=now)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def mark_verified(self, user_id: str, email: str, now: dt.datetime) -> bool:
        """Mark ``email`` verified, only while it is still the user's address."""
        stmt = (
            update(UserRow)
            .where(UserRow.id == user_id, UserRow.email == email, UserRow.deleted_at.is_(None))
            .values(email_verified_at=now, updated_at=now)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def change_email(self, user_id: str, email: str, now: dt.datetime) -> bool:
        """Move the user to ``email`` (already verified); False when it is taken meanwhile."""
        stmt = (
            update(UserRow)
            .where(UserRow.id == user_id, UserRow.deleted_at.is_(None))
            .values(email=email, email_verified_at=now, updated_at=now)
        )
        try:
            async with self.session.begin_nested():
                return _rowcount(await self.session.execute(stmt)) == 1
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
        stmt = (
            update(UserRow)
            .where(UserRow.id == user_id, UserRow.purged_at.is_(None))
            .values(
                email=f"{user_id}@deleted.invalid",
                display_name="",
                password_hash="!",  # noqa: S106 - no hash: no password opens it
                email_verified_at=None,
                purged_at=now,
                updated_at=now,
            )
        )
        if _rowcount(await self.session.execute(stmt)) != 1:
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
        if s.revoked_at is not None:
            # the session's access tokens end at every edge (servicekit.changefeed, docs/auth.md)
            await CHANGE_LOG.record_many(self.session, TOPIC_SESSION, [s.id])

    async def revoke_all(
        self, user_id: str, now: dt.datetime, reason: str, *, keep: str = "", aal: str = ""
    ) -> int:
        """Revoke the user's sessions except ``keep``; only those at ``aal`` when given."""
        stmt = update(SessionRow).where(
            SessionRow.user_id == user_id,
            SessionRow.revoked_at.is_(None),
            SessionRow.id != keep,
        )
        if aal:
            stmt = stmt.where(SessionRow.aal == aal)
        stmt = stmt.values(revoked_at=now, revoke_reason=reason).returning(SessionRow.id)
        revoked = list((await self.session.execute(stmt)).scalars())
        await CHANGE_LOG.record_many(self.session, TOPIC_SESSION, revoked)
        return len(revoked)

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


def _insert_ignoring_conflict(
    session: AsyncSession, table: type[Base], values: dict[str, object]
) -> Executable:
    """``INSERT ... ON CONFLICT DO NOTHING`` on PostgreSQL and SQLite alike."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table).values(**values).on_conflict_do_nothing()
    return sqlite.insert(table).values(**values).on_conflict_do_nothing()


def _factor(row: TotpFactorRow) -> TotpFactor:
    return TotpFactor(
        id=row.id,
        user_id=row.user_id,
        sealed_secret=row.sealed_secret,
        created_at=row.created_at,
        confirmed_at=row.confirmed_at,
        last_step=row.last_step,
    )


class TotpFactorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def for_user(self, user_id: str) -> TotpFactor | None:
        stmt = select(TotpFactorRow).where(TotpFactorRow.user_id == user_id)
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _factor(row) if row else None

    async def has_confirmed(self, user_id: str) -> bool:
        stmt = select(func.count()).where(
            TotpFactorRow.user_id == user_id, TotpFactorRow.confirmed_at.is_not(None)
        )
        return int((await self.session.execute(stmt)).scalar_one()) > 0

    async def replace_pending(self, factor: TotpFactor) -> bool:
        """Drop the user's unconfirmed factor and add ``factor``; False if one is confirmed."""
        await self.session.execute(
            delete(TotpFactorRow).where(
                TotpFactorRow.user_id == factor.user_id, TotpFactorRow.confirmed_at.is_(None)
            )
        )
        stmt = _insert_ignoring_conflict(
            self.session,
            TotpFactorRow,
            {
                "id": factor.id,
                "user_id": factor.user_id,
                "sealed_secret": factor.sealed_secret,
                "created_at": factor.created_at,
                "confirmed_at": None,
                "last_step": factor.last_step,
            },
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def confirm(self, factor_id: str, step: int, now: dt.datetime) -> bool:
        """Atomically confirm a pending factor, consuming ``step``; one concurrent caller wins."""
        stmt = (
            update(TotpFactorRow)
            .where(
                TotpFactorRow.id == factor_id,
                TotpFactorRow.confirmed_at.is_(None),
                TotpFactorRow.last_step < step,
            )
            .values(confirmed_at=now, last_step=step)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def consume_step(self, factor_id: str, step: int) -> bool:
        """``UPDATE ... WHERE last_step < :step``: a code (a step) is accepted exactly once."""
        stmt = (
            update(TotpFactorRow)
            .where(
                TotpFactorRow.id == factor_id,
                TotpFactorRow.confirmed_at.is_not(None),
                TotpFactorRow.last_step < step,
            )
            .values(last_step=step)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def remove(self, user_id: str) -> int:
        stmt = delete(TotpFactorRow).where(TotpFactorRow.user_id == user_id)
        return _rowcount(await self.session.execute(stmt))


class RecoveryCodeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def replace(
        self, user_id: str, hashes: list[str], now: dt.datetime, new_id: Callable[[], str]
    ) -> None:
        """Void the user's whole set and store the new one (same transaction)."""
        await self.remove(user_id)
        for digest in hashes:
            self.session.add(
                RecoveryCodeRow(
                    id=new_id(), user_id=user_id, code_hash=digest, created_at=now, used_at=None
                )
            )
        await self.session.flush()

    async def consume(self, user_id: str, digest: str, now: dt.datetime) -> bool:
        """Mark one unused code used; exactly one concurrent caller gets True."""
        stmt = (
            update(RecoveryCodeRow)
            .where(
                RecoveryCodeRow.user_id == user_id,
                RecoveryCodeRow.code_hash == digest,
                RecoveryCodeRow.used_at.is_(None),
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def remaining(self, user_id: str) -> int:
        stmt = select(func.count()).where(
            RecoveryCodeRow.user_id == user_id, RecoveryCodeRow.used_at.is_(None)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def remove(self, user_id: str) -> None:
        await self.session.execute(
            delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id)
        )


def _challenge(row: MfaChallengeRow) -> MfaChallenge:
    return MfaChallenge(
        id=row.id,
        user_id=row.user_id,
        token_hash=row.token_hash,
        created_at=row.created_at,
        expires_at=row.expires_at,
        attempts=row.attempts,
        consumed_at=row.consumed_at,
        client_ip=row.client_ip,
    )


class MfaChallengeRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, c: MfaChallenge) -> None:
        self.session.add(
            MfaChallengeRow(
                id=c.id,
                user_id=c.user_id,
                token_hash=c.token_hash,
                created_at=c.created_at,
                expires_at=c.expires_at,
                attempts=c.attempts,
                consumed_at=c.consumed_at,
                client_ip=c.client_ip,
            )
        )
        await self.session.flush()

    async def by_hash(self, digest: str) -> MfaChallenge | None:
        stmt = select(MfaChallengeRow).where(MfaChallengeRow.token_hash == digest)
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _challenge(row) if row else None

    async def count_attempt(self, challenge_id: str, now: dt.datetime, max_attempts: int) -> bool:
        """Atomically take one of the challenge's attempts; False when none is left."""
        stmt = (
            update(MfaChallengeRow)
            .where(
                MfaChallengeRow.id == challenge_id,
                MfaChallengeRow.consumed_at.is_(None),
                MfaChallengeRow.expires_at > now,
                MfaChallengeRow.attempts < max_attempts,
            )
            .values(attempts=MfaChallengeRow.attempts + 1)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def consume(self, challenge_id: str, now: dt.datetime) -> bool:
        """Single use: exactly one concurrent caller consumes the challenge."""
        stmt = (
            update(MfaChallengeRow)
            .where(
                MfaChallengeRow.id == challenge_id,
                MfaChallengeRow.consumed_at.is_(None),
                MfaChallengeRow.expires_at > now,
            )
            .values(consumed_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def consume_all(self, user_id: str, now: dt.datetime) -> int:
        """End the user's open challenges (their password just stopped being the password)."""
        stmt = (
            update(MfaChallengeRow)
            .where(MfaChallengeRow.user_id == user_id, MfaChallengeRow.consumed_at.is_(None))
            .values(consumed_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(await self.session.execute(stmt))

    async def purge(self, before: dt.datetime) -> int:
        stmt = delete(MfaChallengeRow).where(MfaChallengeRow.expires_at < before)
        return _rowcount(await self.session.execute(stmt))


def _throttle(row: ThrottleRow) -> ThrottleState:
    return ThrottleState(
        failures=row.failures,
        hour_start=row.hour_start,
        hour_failures=row.hour_failures,
        blocked_until=row.blocked_until,
        last_failure_at=row.last_failure_at,
        version=row.version,
    )


class ThrottleRepository:
    """Counters changed only by compare-and-set on ``version`` (or an insert that may lose)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, key: str) -> ThrottleState | None:
        stmt = select(ThrottleRow).where(ThrottleRow.key == key).with_for_update()
        row = (
            await self.session.execute(stmt.execution_options(populate_existing=True))
        ).scalar_one_or_none()
        return _throttle(row) if row else None

    async def store(self, key: str, expected: ThrottleState | None, new: ThrottleState) -> bool:
        """Write ``new`` if the counter is still ``expected`` (absent when None)."""
        values = {
            "failures": new.failures,
            "hour_start": new.hour_start,
            "hour_failures": new.hour_failures,
            "blocked_until": new.blocked_until,
            "last_failure_at": new.last_failure_at,
            "version": new.version,
        }
        if expected is None:
            stmt = _insert_ignoring_conflict(self.session, ThrottleRow, {"key": key, **values})
        else:
            stmt = (
                update(ThrottleRow)
                .where(ThrottleRow.key == key, ThrottleRow.version == expected.version)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        return _rowcount(await self.session.execute(stmt)) == 1

    async def reset(self, key: str) -> None:
        await self.session.execute(delete(ThrottleRow).where(ThrottleRow.key == key))

    async def refund(self, key: str) -> None:
        """Give back one reserved attempt (a success that must not clear the whole counter)."""
        stmt = (
            update(ThrottleRow)
            .where(ThrottleRow.key == key)
            .values(
                failures=case((ThrottleRow.failures > 0, ThrottleRow.failures - 1), else_=0),
                hour_failures=case(
                    (ThrottleRow.hour_failures > 0, ThrottleRow.hour_failures - 1), else_=0
                ),
                version=ThrottleRow.version + 1,
            )
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def purge(self, idle_since: dt.datetime, now: dt.datetime) -> int:
        stmt = delete(ThrottleRow).where(
            ThrottleRow.last_failure_at < idle_since,
            or_(ThrottleRow.blocked_until.is_(None), ThrottleRow.blocked_until < now),
        )
        return _rowcount(await self.session.execute(stmt))


class SecretRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, name: str) -> str | None:
        row = await self.session.get(AuthSecretRow, name)
        return row.sealed_value if row else None

    async def add_if_absent(self, name: str, sealed: str, now: dt.datetime) -> None:
        stmt = _insert_ignoring_conflict(
            self.session,
            AuthSecretRow,
            {"name": name, "sealed_value": sealed, "created_at": now},
        )
        await self.session.execute(stmt)


def _pin(row: DeploymentPinRow) -> DeploymentPin:
    return DeploymentPin(
        workspace_id=row.workspace_id,
        deployment_id=row.deployment_id,
        pin_hash=row.pin_hash,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class DeploymentPinRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workspace_id: str, deployment_id: str) -> DeploymentPin | None:
        row = await self.session.get(
            DeploymentPinRow, (workspace_id, deployment_id), populate_existing=True
        )
        return _pin(row) if row else None

    async def put(self, pin: DeploymentPin) -> None:
        """Insert or replace the PIN of a deployment."""
        inserted = _insert_ignoring_conflict(
            self.session,
            DeploymentPinRow,
            {
                "workspace_id": pin.workspace_id,
                "deployment_id": pin.deployment_id,
                "pin_hash": pin.pin_hash,
                "created_at": pin.created_at,
                "updated_at": pin.updated_at,
            },
        )
        if _rowcount(await self.session.execute(inserted)) == 1:
            return
        stmt = (
            update(DeploymentPinRow)
            .where(
                DeploymentPinRow.workspace_id == pin.workspace_id,
                DeploymentPinRow.deployment_id == pin.deployment_id,
            )
            .values(pin_hash=pin.pin_hash, updated_at=pin.updated_at)
            .execution_options(synchronize_session=False)
        )
        await self.session.execute(stmt)

    async def remove(self, workspace_id: str, deployment_id: str) -> bool:
        stmt = delete(DeploymentPinRow).where(
            DeploymentPinRow.workspace_id == workspace_id,
            DeploymentPinRow.deployment_id == deployment_id,
        )
        return _rowcount(await self.session.execute(stmt)) == 1


def _account_token(row: AccountTokenRow) -> AccountToken:
    return AccountToken(
        id=row.id,
        purpose=row.purpose,
        user_id=row.user_id,
        token_hash=row.token_hash,
        email=row.email,
        created_at=row.created_at,
        expires_at=row.expires_at,
        consumed_at=row.consumed_at,
    )


class AccountTokenRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, t: AccountToken) -> None:
        self.session.add(
            AccountTokenRow(
                id=t.id,
                purpose=t.purpose,
                user_id=t.user_id,
                token_hash=t.token_hash,
                email=t.email,
                created_at=t.created_at,
                expires_at=t.expires_at,
                consumed_at=t.consumed_at,
            )
        )
        await self.session.flush()

    async def by_hash(self, digest: str, purpose: str) -> AccountToken | None:
        stmt = select(AccountTokenRow).where(
            AccountTokenRow.token_hash == digest, AccountTokenRow.purpose == purpose
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _account_token(row) if row else None

    async def consume(self, token_id: str, now: dt.datetime) -> bool:
        """Single use: of concurrent callers exactly one sees True."""
        stmt = (
            update(AccountTokenRow)
            .where(
                AccountTokenRow.id == token_id,
                AccountTokenRow.consumed_at.is_(None),
                AccountTokenRow.expires_at > now,
            )
            .values(consumed_at=now)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(await self.session.execute(stmt)) == 1

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
            .execution_options(synchronize_session=False)
        )
        return _rowcount(await self.session.execute(stmt))

    async def purge(self, before: dt.datetime) -> int:
        stmt = delete(AccountTokenRow).where(AccountTokenRow.expires_at < before)
        return _rowcount(await self.session.execute(stmt))


class AuthUnitOfWork(SqlUnitOfWork):
    users: UserRepository
    sessions: SessionRepository
    refresh_tokens: RefreshTokenRepository
    signing_keys: SigningKeyRepository
    totp: TotpFactorRepository
    recovery_codes: RecoveryCodeRepository
    challenges: MfaChallengeRepository
    throttle: ThrottleRepository
    secrets: SecretRepository
    pins: DeploymentPinRepository
    outbox: OutboxRepository[AuditEvent]
    tokens: AccountTokenRepository
    mail: OutboxRepository[Mail]

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], mail: MailOutbox | None = None
    ) -> None:
        super().__init__(sessions)
        self._mail_outbox = mail

    def _bind(self, session: AsyncSession) -> None:
        self.tokens = AccountTokenRepository(session)
        self.mail = OutboxRepository(session, self._mail_outbox)
        self.users = UserRepository(session)
        self.sessions = SessionRepository(session)
        self.refresh_tokens = RefreshTokenRepository(session)
        self.signing_keys = SigningKeyRepository(session)
        self.totp = TotpFactorRepository(session)
        self.recovery_codes = RecoveryCodeRepository(session)
        self.challenges = MfaChallengeRepository(session)
        self.throttle = ThrottleRepository(session)
        self.secrets = SecretRepository(session)
        self.pins = DeploymentPinRepository(session)
        self.outbox = OutboxRepository(session, AUDIT_OUTBOX)
