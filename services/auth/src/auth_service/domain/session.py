"""Sessions: one per login, each a refresh-token family with idle and absolute expiry.

A session is active until it is revoked, its idle deadline passes (no refresh for 14 days) or
its absolute deadline passes (30 days after login, whatever the activity).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    idle: dt.timedelta = dt.timedelta(days=14)
    absolute: dt.timedelta = dt.timedelta(days=30)
    # How long a rotated refresh token may be replayed to get its child again (lost response).
    grace: dt.timedelta = dt.timedelta(seconds=10)


@dataclass(slots=True)
class Session:
    id: str
    user_id: str
    created_at: dt.datetime
    last_used_at: dt.datetime
    idle_expires_at: dt.datetime
    absolute_expires_at: dt.datetime
    auth_time: dt.datetime
    client_ip: str = ""
    aal: str = "aal1"
    amr: tuple[str, ...] = ("pwd",)
    revoked_at: dt.datetime | None = None
    revoke_reason: str = ""

    @classmethod
    def begin(
        cls,
        session_id: str,
        user_id: str,
        now: dt.datetime,
        policy: SessionPolicy,
        client_ip: str = "",
        *,
        aal: str = "aal1",
        amr: tuple[str, ...] = ("pwd",),
    ) -> Session:
        absolute = now + policy.absolute
        return cls(
            id=session_id,
            user_id=user_id,
            created_at=now,
            last_used_at=now,
            idle_expires_at=min(now + policy.idle, absolute),
            absolute_expires_at=absolute,
            auth_time=now,
            client_ip=client_ip,
            aal=aal,
            amr=amr,
        )

    def active(self, now: dt.datetime) -> bool:
        return (
            self.revoked_at is None
            and now < self.idle_expires_at
            and now < self.absolute_expires_at
        )

    def touch(self, now: dt.datetime, policy: SessionPolicy) -> None:
        """A refresh: the idle deadline moves, never past the absolute one."""
        self.last_used_at = now
        self.idle_expires_at = min(now + policy.idle, self.absolute_expires_at)

    def revoke(self, now: dt.datetime, reason: str) -> None:
        if self.revoked_at is None:
            self.revoked_at = now
            self.revoke_reason = reason

    def expires_in(self, now: dt.datetime) -> int:
        """Seconds until the session ends if its refresh token is not used."""
        end = min(self.idle_expires_at, self.absolute_expires_at)
        return max(0, int((end - now).total_seconds()))
