"""Which refused verifications of a known key are audited (at most once per key and reason per
minute, by ``servicekit.throttle.AuditThrottle``, in memory, per replica)."""

from __future__ import annotations

from typing import Final

from keys_service.domain import DenyReason

__all__ = ["AUDITED_DENIALS"]


AUDITED_DENIALS: Final = frozenset(
    {
        DenyReason.KEY_REVOKED,
        DenyReason.KEY_EXPIRED,
        DenyReason.KEY_ROTATED,
        DenyReason.WORKSPACE_DELETED,
        DenyReason.IP_NOT_ALLOWED,
        DenyReason.ORIGIN_NOT_ALLOWED,
        DenyReason.SCOPE_NOT_GRANTED,
    }
)
