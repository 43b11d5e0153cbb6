"""Workspaces, members and the Owner/Admin/User rules of DESIGN §4.

Roles are ordered (User < Admin < Owner). Admins manage members below Owner; only an Owner
grants, removes or transfers the Owner role; at least one Owner always remains.
"""

from __future__ import annotations

import datetime as dt
import enum
import unicodedata
from dataclasses import dataclass

from servicekit.errors import FailedPrecondition, InvalidArgument, PermissionDenied

DEFAULT_RETENTION_DAYS = 30
MAX_RETENTION_DAYS = 365


class Role(enum.IntEnum):
    """Values match ``railguard.access.v1.Role``."""

    USER = 1
    ADMIN = 2
    OWNER = 3


class Plan(enum.IntEnum):
    """Values match ``railguard.workspaces.v1.Plan``."""

    FREE = 1
    TEAM = 2
    ENTERPRISE = 3


@dataclass(slots=True)
class Workspace:
    id: str
    display_name: str
    plan: Plan
    mfa_required: bool
    retention_days: int
    created_at: dt.datetime
    updated_at: dt.datetime
    deleted_at: dt.datetime | None = None
    purged_at: dt.datetime | None = None
    # bumped by every delete, restore and purge; other services apply lifecycle events by it
    lifecycle_version: int = 0
    # Members must have a verified email address to act in the workspace (next to mfa_required).
    verified_email_required: bool = False

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def purge_at(self) -> dt.datetime | None:
        if self.deleted_at is None:
            return None
        return self.deleted_at + dt.timedelta(days=self.retention_days)

    @property
    def purged(self) -> bool:
        return self.purged_at is not None

    def purge_due(self, now: dt.datetime) -> bool:
        """Whether the retention window of a deleted workspace has ended (restore is refused)."""
        purge_at = self.purge_at
        return purge_at is not None and now >= purge_at

    def purge(self, now: dt.datetime) -> None:
        """Turn the workspace into a tombstone: its row stays, so references remain valid."""
        if not self.purge_due(now):
            raise FailedPrecondition("the retention window has not ended", reason="NOT_PURGEABLE")
        if self.purged:
            raise FailedPrecondition("workspace is already purged", reason="WORKSPACE_PURGED")
        self.purged_at = now
        self._lifecycle_changed(now)

    def delete(self, now: dt.datetime) -> None:
        if self.deleted:
            raise FailedPrecondition("workspace is already deleted", reason="WORKSPACE_DELETED")
        self.deleted_at = now
        self._lifecycle_changed(now)

    def undelete(self, now: dt.datetime) -> None:
        if not self.deleted:
            raise FailedPrecondition("workspace is not deleted", reason="WORKSPACE_NOT_DELETED")
        if self.purge_due(now):
            raise FailedPrecondition("the retention window has ended", reason="RETENTION_EXPIRED")
        self.deleted_at = None
        self._lifecycle_changed(now)

    def _lifecycle_changed(self, now: dt.datetime) -> None:
        # every delete, restore and purge is one step other services order lifecycle events by
        self.updated_at = now
        self.lifecycle_version += 1


@dataclass(slots=True)
class Member:
    workspace_id: str
    user_id: str
    email: str
    role: Role
    created_at: dt.datetime


def validate_display_name(value: str, field: str = "display_name") -> str:
    name = unicodedata.normalize("NFC", value).strip()
    if not 1 <= len(name) <= 100:
        raise InvalidArgument.field(
            field, "must be 1 to 100 characters", reason="INVALID_DISPLAY_NAME"
        )
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidArgument.field(
            field, "must not contain control characters", reason="INVALID_DISPLAY_NAME"
        )
    return name


def validate_retention(days: int, field: str = "retention_days") -> int:
    if days == 0:
        return DEFAULT_RETENTION_DAYS
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise InvalidArgument.field(
            field, f"must be 1 to {MAX_RETENTION_DAYS}", reason="INVALID_RETENTION"
        )
    return days


def check_can_assign(actor: Role, target_current: Role | None, new_role: Role, owners: int) -> None:
    """May ``actor`` give a member (currently ``target_current``, None if new) the role ``new_role``?"""
    if Role.OWNER in (new_role, target_current) and actor is not Role.OWNER:
        raise PermissionDenied(
            "only an Owner grants or removes the Owner role", reason="OWNER_REQUIRED"
        )
    if actor < Role.ADMIN:
        raise PermissionDenied("your role does not allow managing members", reason="ROLE_TOO_LOW")
    if target_current is Role.OWNER and new_role is not Role.OWNER and owners <= 1:
        raise FailedPrecondition("a workspace always keeps at least one Owner", reason="LAST_OWNER")


def check_can_remove(actor: Role, actor_is_target: bool, target: Role, owners: int) -> None:
    """May ``actor`` remove a member whose role is ``target``? Anyone may leave, but not the last Owner.

    The permission is checked before the last-Owner rule, so an Admin is told "not allowed"
    rather than a state they could never change.
    """
    if not actor_is_target:
        if target is Role.OWNER and actor is not Role.OWNER:
            raise PermissionDenied("only an Owner removes an Owner", reason="OWNER_REQUIRED")
        if actor < Role.ADMIN:
            raise PermissionDenied(
                "your role does not allow managing members", reason="ROLE_TOO_LOW"
            )
    if target is Role.OWNER and owners <= 1:
        raise FailedPrecondition("a workspace always keeps at least one Owner", reason="LAST_OWNER")
