"""Invitations: an email address asked into a workspace with a role, by a single-use token.

The token is 256 random bits (43 URL-safe characters), mailed once and stored only as its
SHA-256 (a CSPRNG value of that size cannot be recovered from its hash). It works for 7 days,
once, for the invited address only; a used, revoked, expired, superseded or another address's
token all get the same answer. Until accepted an invitation is no member: it counts against
nothing and grants nothing.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
import secrets
from dataclasses import dataclass

from workspaces_service.domain.workspace import Role

TTL = dt.timedelta(days=7)
_WELL_FORMED = re.compile(r"^[A-Za-z0-9_-]{43}$")


class InvitationState(enum.IntEnum):
    PENDING = 1
    ACCEPTED = 2
    REVOKED = 3
    EXPIRED = 4


def new_invitation_token() -> str:
    return secrets.token_urlsafe(32)


def invitation_token_hash(token: str) -> str:
    return hashlib.sha256(f"invitation:{token}".encode("ascii")).hexdigest()


def invitation_token_well_formed(token: str) -> bool:
    return bool(_WELL_FORMED.match(token))


@dataclass(frozen=True, slots=True)
class Invitation:
    id: str
    workspace_id: str
    email: str
    role: Role
    token_hash: str
    invited_by: str
    created_at: dt.datetime
    expires_at: dt.datetime
    accepted_at: dt.datetime | None = None
    accepted_by: str = ""
    revoked_at: dt.datetime | None = None

    def state(self, now: dt.datetime) -> InvitationState:
        if self.accepted_at is not None:
            return InvitationState.ACCEPTED
        if self.revoked_at is not None:
            return InvitationState.REVOKED
        if now >= self.expires_at:
            return InvitationState.EXPIRED
        return InvitationState.PENDING
