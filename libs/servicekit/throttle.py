"""How often a repeated refusal is audited: at most once per subject and reason per window.

Pure (no gRPC, no SQLAlchemy), so domain code and use cases of every service may hold one;
auth throttles its refusals with it, keys its denied verifications.
"""

from __future__ import annotations

from datetime import datetime, timedelta

__all__ = ["AuditThrottle"]


class AuditThrottle:
    """At most one audited refusal per subject and reason per ``window`` (in memory, per replica).

    Bounded: once ``max_entries`` are held, entries older than the window are dropped, and if
    that is not enough the table is cleared (an attacker cycling through many known subjects can
    at worst cause one event per subject and reason per window, which is what the limit allows).
    """

    def __init__(self, window: timedelta = timedelta(minutes=1), max_entries: int = 10_000) -> None:
        self._window, self._max = window, max_entries
        self._last: dict[tuple[str, str], datetime] = {}

    def allow(self, subject: str, reason: str, now: datetime) -> bool:
        """Whether a refusal of ``subject`` for ``reason`` at ``now`` is to be audited."""
        slot = (subject, reason)
        last = self._last.get(slot)
        if last is not None and now - last < self._window:
            return False
        if slot not in self._last and len(self._last) >= self._max:
            self._last = {k: t for k, t in self._last.items() if now - t < self._window}
            if len(self._last) >= self._max:
                self._last.clear()
        self._last[slot] = now
        return True
