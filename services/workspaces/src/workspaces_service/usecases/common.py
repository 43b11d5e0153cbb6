"""What the workspaces use cases share: limits, the values they return, small parsing rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from servicekit.errors import InvalidArgument, NotFound
from servicekit.lifecycle import LifecycleState
from servicekit.roles import AccessView

from workspaces_service.domain import Role, Workspace
from workspaces_service.domain.audit_log import ChainHead

__all__ = [
    "MAX_APPEND_BATCH",
    "UPDATABLE_FIELDS",
    "AccessView",
    "ChainReport",
    "parse_id",
]

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
UPDATABLE_FIELDS = frozenset(
    {"display_name", "plan", "mfa_required", "retention_days", "verified_email_required"}
)
MAX_APPEND_BATCH = 500
_VERIFY_CHUNK = 500
_STREAM_CHUNK = 100


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of recomputing a workspace's audit chain."""

    ok: bool
    verified: int
    first_broken_sequence: int
    head: ChainHead


def parse_id(value: str, field: str) -> str:
    if not _ID.match(value):
        raise InvalidArgument.field(field, "is not a valid id", reason="INVALID_NAME")
    return value


def _not_found() -> NotFound:
    return NotFound("workspace not found", reason="WORKSPACE_NOT_FOUND")


def _lifecycle_state(ws: Workspace) -> LifecycleState:
    if ws.purged:
        return LifecycleState.PURGED
    return LifecycleState.DELETED if ws.deleted else LifecycleState.ACTIVE


def _member_name(ws_id: str, user_id: str) -> str:
    return f"workspaces/{ws_id}/members/{user_id}"


def _sequence_cursor(cursor: str) -> int:
    if not cursor:
        return 0
    if not cursor.isdigit():
        raise InvalidArgument.field(
            "page_token", "is not a valid page token", reason="INVALID_PAGE_TOKEN"
        )
    return int(cursor)


def _email(value: str, field: str) -> str:
    """``value`` trimmed and lower-cased if it looks like an email address; else INVALID_EMAIL."""
    address = value.strip().lower()
    if not _EMAIL.match(address):
        raise InvalidArgument.field(field, "must be an email address", reason="INVALID_EMAIL")
    return address


def _role(value: int, field: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidArgument.field(
            field, "must be ROLE_USER, ROLE_ADMIN or ROLE_OWNER", reason="INVALID_ROLE"
        ) from None
