"""Whether a session is still active: the read the edge makes to end a session's access tokens.

An access token carries its session id (``sid``). Every way a session ends (logout,
RevokeSession, a password change or reset, refresh-token reuse, MFA enrolment ending the aal1
sessions, account deletion) marks the session revoked in its transaction; the edge, when it has
no pushed state to decide from, asks this use case and refuses the token of a session that is
not active. Read-only: nothing is written, nothing is audited.
"""

from __future__ import annotations

from collections.abc import Callable

from servicekit.clock import Clock
from servicekit.errors import InvalidArgument

from auth_service.ports import UnitOfWork

__all__ = ["MAX_SESSION_ID_LENGTH", "SessionState"]

# session ids are 32 hex characters today; anything far longer is not one of ours
MAX_SESSION_ID_LENGTH = 128


class SessionState:
    def __init__(self, uow: Callable[[], UnitOfWork], clock: Clock) -> None:
        self._uow, self._clock = uow, clock

    async def active(self, session_id: str) -> bool:
        """True while the session exists, is not revoked and has not ended (idle or absolute
        expiry); an unknown session is not active."""
        if not session_id:
            raise InvalidArgument.field("session_id", "is required", reason="INVALID_SESSION_ID")
        if len(session_id) > MAX_SESSION_ID_LENGTH:
            return False  # cannot exist; no lookup
        async with self._uow() as uow:
            session = await uow.sessions.get(session_id)
        return session is not None and session.active(self._clock.now())
