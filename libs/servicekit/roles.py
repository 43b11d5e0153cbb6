"""Workspace roles and a caller's standing in a workspace: one definition for every service.

:class:`Role` mirrors ``railguard.access.v1.Role`` (same numbers) so domain code can rank roles
without importing the contracts. :class:`AccessView` is what the workspaces service answers to
``ResolveAccess`` and what the edge authorises with; both sides spell it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

__all__ = ["AccessView", "Role", "role_at_least"]


class Role(IntEnum):
    """A workspace role, ordered: Owner ⊃ Admin ⊃ User. NONE is "no role" (not a member)."""

    NONE = 0
    USER = 1
    ADMIN = 2
    OWNER = 3


def role_at_least(role: int, minimum: int) -> bool:
    """Whether ``role`` is ``minimum`` or above; no role is never enough (fail closed)."""
    return role >= minimum and role != Role.NONE


@dataclass(frozen=True, slots=True)
class AccessView:
    """What the edge needs to authorise a request in a workspace."""

    workspace_exists: bool
    member: bool
    role: int
    deleted: bool
    mfa_required: bool
    plan: int
    verified_email_required: bool = False
