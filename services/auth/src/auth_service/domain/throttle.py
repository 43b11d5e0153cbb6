"""Attempt throttling: exponential backoff after a few failures, a hard hourly cap, no lockout.

The counter of a key (an account, an IP, a deployment) is *reserved* before the secret is
checked: an admitted attempt counts as a failure at once, and a success then resets (or refunds)
it. Reservation is a compare-and-set on the counter's version, so parallel attempts are counted
one by one and can never exceed the limits. :func:`admit` is the whole policy, as a pure
function of the stored state and the time.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace

HOUR = dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    # From the free_failures-th consecutive failure on, each failure imposes a wait of
    # base_delay * 2^(failures - free_failures) before the next attempt, at most max_delay.
    free_failures: int = 5
    base_delay: dt.timedelta = dt.timedelta(seconds=1)
    max_delay: dt.timedelta = dt.timedelta(minutes=15)
    # A hard cap of failures in a (fixed, one-hour) window, whatever the backoff allows.
    hourly_cap: int = 100
    # A counter with no failure for this long starts again from zero: no permanent lockout.
    reset_after: dt.timedelta = dt.timedelta(hours=12)

    def delay(self, failures: int) -> dt.timedelta:
        """The wait imposed after the ``failures``-th consecutive failure."""
        beyond = failures - self.free_failures
        if beyond < 0:
            return dt.timedelta(0)
        seconds = self.base_delay.total_seconds() * 2.0 ** min(beyond, 40)
        return min(dt.timedelta(seconds=seconds), self.max_delay)


@dataclass(frozen=True, slots=True)
class ThrottleState:
    failures: int
    hour_start: dt.datetime
    hour_failures: int
    blocked_until: dt.datetime | None
    last_failure_at: dt.datetime | None
    version: int = 0

    @classmethod
    def empty(cls, now: dt.datetime) -> ThrottleState:
        return cls(0, now, 0, None, None, 0)


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    retry_after: float  # seconds; 0 when allowed
    state: ThrottleState  # the state to store when allowed (version + 1)
    started_block: bool = False  # this attempt started a backoff (worth an audit event)


def admit(policy: ThrottlePolicy, state: ThrottleState | None, now: dt.datetime) -> Admission:
    s = state or ThrottleState.empty(now)
    if s.last_failure_at is not None and now - s.last_failure_at >= policy.reset_after:
        s = replace(s, failures=0, blocked_until=None)
    if now - s.hour_start >= HOUR or now < s.hour_start:
        s = replace(s, hour_start=now, hour_failures=0)
    if s.blocked_until is not None and now < s.blocked_until:
        return Admission(False, _seconds(s.blocked_until - now), s)
    if s.hour_failures >= policy.hourly_cap:
        return Admission(False, _seconds(s.hour_start + HOUR - now), s)
    failures = s.failures + 1
    wait = policy.delay(failures)
    blocked = now + wait if wait > dt.timedelta(0) else None
    if s.hour_failures + 1 >= policy.hourly_cap:
        blocked = max(blocked or now, s.hour_start + HOUR)
    nxt = replace(
        s,
        failures=failures,
        hour_failures=s.hour_failures + 1,
        blocked_until=blocked,
        last_failure_at=now,
        version=s.version + 1,
    )
    return Admission(True, 0.0, nxt, started_block=blocked is not None and s.blocked_until is None)


def _seconds(delta: dt.timedelta) -> float:
    return max(1.0, math.ceil(delta.total_seconds()))
