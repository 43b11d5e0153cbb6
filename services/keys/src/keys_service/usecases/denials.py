"""How often a refused verification of a known key is audited (in memory, per replica)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from keys_service.domain import DenyReason

__all__ = ["AUDITED_DENIALS", "DenialThrottle"]


class DenialThrottle:
    """At most one audited refusal per key and reason per ``window`` (in memory, per replica).

    Bounded: once ``max_entries`` are held, entries older than the window are dropped, and if
    that is not enough the table is cleared (an attacker cycling through many known keys can
    at worst cause one event per key and reason per window, which is what the limit allows).
    """

    def __init__(self, window: timedelta = timedelta(minutes=1), max_entries: int = 10_000) -> None:
        self._window, self._max = window, max_entries
        self._last: dict[tuple[str, str], datetime] = {}

    def allow(self, key_id: str, reason: str, now: datetime) -> bool:
        slot = (key_id, reason)
        last = self._last.get(slot)
        if last is not None and now - last < self._window:
            return False
        if slot not in self._last and len(self._last) >= self._max:
            self._last = {k: t for k, t in self._last.items() if now - t < self._window}
            if len(self._last) >= self._max:
                self._last.clear()
        self._last[slot] = now
        return True


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
