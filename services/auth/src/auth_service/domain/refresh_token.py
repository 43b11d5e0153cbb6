"""Refresh tokens: 256-bit opaque strings, stored only as SHA-256, rotated on every use.

Each use retires the presented token and issues a child in the same family (session). A
rotated token presented again is a *replay*:

* within the grace window after its rotation, and while its child is still the family's
  newest token, it is a lost response and gets that same child again;
* otherwise it is reuse — a stolen or leaked token — and the whole family is revoked.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from auth_service.domain.bearer_token import BearerTokenFormat

PREFIX = "rgr_"
_FORMAT = BearerTokenFormat(PREFIX)

new_refresh_token = _FORMAT.new
well_formed = _FORMAT.well_formed
token_hash = _FORMAT.hash


@dataclass(slots=True)
class RefreshRecord:
    """A stored refresh token. ``sealed_child`` is the child's plaintext, encrypted, kept for
    the grace window only so that a lost response can be answered with the same child."""

    id: str
    session_id: str
    hash: str = field(repr=False)
    created_at: dt.datetime
    rotated_at: dt.datetime | None = None
    child_id: str | None = None
    sealed_child: str | None = field(default=None, repr=False)

    @property
    def rotated(self) -> bool:
        return self.rotated_at is not None


class Replay(enum.Enum):
    GRACE = "grace"
    REUSE = "reuse"


def classify_replay(
    parent: RefreshRecord, child: RefreshRecord | None, now: dt.datetime, grace: dt.timedelta
) -> Replay:
    """What a second presentation of the rotated ``parent`` means (``child`` is its child)."""
    if parent.rotated_at is None:
        raise ValueError("not a replay: the token has not been rotated")
    in_window = now - parent.rotated_at <= grace
    child_is_newest = child is not None and not child.rotated
    if in_window and child_is_newest and parent.sealed_child is not None:
        return Replay.GRACE
    return Replay.REUSE
