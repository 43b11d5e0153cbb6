"""How often a refused verification of a known key is audited (in memory, per replica)."""

from __future__ import annotations

from typing import Final

from servicekit.throttle import AuditThrottle

from keys_service.domain import DenyReason

__all__ = ["AUDITED_DENIALS", "DenialThrottle"]


# The shared throttle under the name the keys use cases know it by (one key id per subject).
DenialThrottle = AuditThrottle

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
