"""Second factors: TOTP factors, recovery codes and the login's MFA challenges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from servicekit.rows import columns, from_row, rowcount
from sqlalchemy import ColumnElement, delete, func, select, update

from auth_service.adapters.statements import (
    SqlRepository,
    changed,
    consume_once,
    insert_ignoring_conflict,
)
from auth_service.adapters.tables import MfaChallengeRow, RecoveryCodeRow, TotpFactorRow
from auth_service.domain import MfaChallenge, TotpFactor


class TotpFactorRepository(SqlRepository):
    async def for_user(self, user_id: str) -> TotpFactor | None:
        stmt = select(TotpFactorRow).where(TotpFactorRow.user_id == user_id)
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return from_row(TotpFactor, row) if row else None

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
        stmt = insert_ignoring_conflict(
            self.session, TotpFactorRow, columns(factor, confirmed_at=None)
        )
        return rowcount(await self.session.execute(stmt)) == 1

    async def confirm(self, factor_id: str, step: int, now: dt.datetime) -> bool:
        """Atomically confirm a pending factor, consuming ``step``; one concurrent caller wins."""
        return await self._take_step(
            factor_id, step, TotpFactorRow.confirmed_at.is_(None), confirmed_at=now
        )

    async def consume_step(self, factor_id: str, step: int) -> bool:
        """``UPDATE ... WHERE last_step < :step``: a code (a step) is accepted exactly once."""
        return await self._take_step(factor_id, step, TotpFactorRow.confirmed_at.is_not(None))

    async def _take_step(
        self, factor_id: str, step: int, state: ColumnElement[bool], **values: object
    ) -> bool:
        """Move the factor (in ``state``) to time step ``step`` only if that step is newer than
        its last: a code is accepted once, by one concurrent caller."""
        stmt = (
            update(TotpFactorRow)
            .where(TotpFactorRow.id == factor_id, state, TotpFactorRow.last_step < step)
            .values(last_step=step, **values)
        )
        return await changed(self.session, stmt) == 1

    async def remove(self, user_id: str) -> int:
        stmt = delete(TotpFactorRow).where(TotpFactorRow.user_id == user_id)
        return rowcount(await self.session.execute(stmt))


class RecoveryCodeRepository(SqlRepository):
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
        )
        return await changed(self.session, stmt) == 1

    async def remaining(self, user_id: str) -> int:
        stmt = select(func.count()).where(
            RecoveryCodeRow.user_id == user_id, RecoveryCodeRow.used_at.is_(None)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def remove(self, user_id: str) -> None:
        await self.session.execute(
            delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id)
        )


class MfaChallengeRepository(SqlRepository):
    async def add(self, c: MfaChallenge) -> None:
        self.session.add(MfaChallengeRow(**columns(c)))
        await self.session.flush()

    async def by_hash(self, digest: str) -> MfaChallenge | None:
        stmt = select(MfaChallengeRow).where(MfaChallengeRow.token_hash == digest)
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return from_row(MfaChallenge, row) if row else None

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
        )
        return await changed(self.session, stmt) == 1

    async def consume(self, challenge_id: str, now: dt.datetime) -> bool:
        """Single use: exactly one concurrent caller consumes the challenge."""
        return await consume_once(self.session, MfaChallengeRow, challenge_id, now)

    async def consume_all(self, user_id: str, now: dt.datetime) -> int:
        """End the user's open challenges (their password just stopped being the password)."""
        stmt = (
            update(MfaChallengeRow)
            .where(MfaChallengeRow.user_id == user_id, MfaChallengeRow.consumed_at.is_(None))
            .values(consumed_at=now)
        )
        return await changed(self.session, stmt)

    async def purge(self, before: dt.datetime) -> int:
        stmt = delete(MfaChallengeRow).where(MfaChallengeRow.expires_at < before)
        return rowcount(await self.session.execute(stmt))
