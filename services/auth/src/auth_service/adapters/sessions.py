"""Sessions and their refresh tokens; a revocation is published on the change feed."""

from __future__ import annotations

import datetime as dt

from servicekit.db import page_newest_first
from servicekit.rows import columns, from_row, rowcount
from sqlalchemy import select, update

from auth_service.adapters.statements import SqlRepository, changed, saving
from auth_service.adapters.tables import CHANGE_LOG, RefreshTokenRow, SessionRow
from auth_service.domain import RefreshRecord, Session

# The change feed's topic (servicekit.changefeed): a session was revoked (key: its id).
TOPIC_SESSION = "session"

# what a save writes: the use of a session and its revocation (the rest is fixed at login)
_SESSION_CHANGES = ("last_used_at", "idle_expires_at", "revoked_at", "revoke_reason")


def _session(row: SessionRow) -> Session:
    return from_row(Session, row, amr=tuple(m for m in row.amr.split(",") if m))


def _refresh(row: RefreshTokenRow) -> RefreshRecord:
    return from_row(RefreshRecord, row, hash=row.token_hash)


class SessionRepository(SqlRepository):
    async def get(self, session_id: str) -> Session | None:
        row = await self.session.get(SessionRow, session_id)
        return _session(row) if row else None

    async def add(self, s: Session) -> None:
        self.session.add(SessionRow(**columns(s, amr=",".join(s.amr))))
        await self.session.flush()

    async def save(self, s: Session) -> None:
        await self.session.execute(saving(SessionRow, s, _SESSION_CHANGES))
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
        stmt = page_newest_first(stmt, SessionRow.created_at, SessionRow.id, after, limit)
        return [_session(r) for r in (await self.session.execute(stmt)).scalars()]


class RefreshTokenRepository(SqlRepository):
    async def get(self, token_id: str) -> RefreshRecord | None:
        row = await self.session.get(RefreshTokenRow, token_id, populate_existing=True)
        return _refresh(row) if row else None

    async def by_hash(self, digest: str) -> RefreshRecord | None:
        stmt = select(RefreshTokenRow).where(RefreshTokenRow.token_hash == digest)
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _refresh(row) if row else None

    async def add(self, record: RefreshRecord) -> None:
        self.session.add(RefreshTokenRow(**columns(record, renamed={"hash": "token_hash"})))
        await self.session.flush()

    async def claim(
        self, token_id: str, now: dt.datetime, child_id: str, sealed_child: str
    ) -> bool:
        """Atomically mark an unrotated token rotated; exactly one concurrent caller gets True."""
        stmt = (
            update(RefreshTokenRow)
            .where(RefreshTokenRow.id == token_id, RefreshTokenRow.rotated_at.is_(None))
            .values(rotated_at=now, child_id=child_id, sealed_child=sealed_child)
        )
        return await changed(self.session, stmt) == 1

    async def forget_grace_secrets(self, rotated_before: dt.datetime, session_id: str = "") -> int:
        """Drop the sealed children whose grace window has ended."""
        stmt = update(RefreshTokenRow).where(
            RefreshTokenRow.sealed_child.is_not(None), RefreshTokenRow.rotated_at < rotated_before
        )
        if session_id:
            stmt = stmt.where(RefreshTokenRow.session_id == session_id)
        stmt = stmt.values(sealed_child=None).execution_options(synchronize_session=False)
        return rowcount(await self.session.execute(stmt))
