"""The workspaces domain: pure rules about workspaces, members and roles (no gRPC, no SQL)."""

from workspaces_service.domain.workspace import (
    DEFAULT_RETENTION_DAYS,
    Member,
    Plan,
    Role,
    Workspace,
    check_can_assign,
    check_can_remove,
    validate_display_name,
    validate_retention,
)

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "Member",
    "Plan",
    "Role",
    "Workspace",
    "check_can_assign",
    "check_can_remove",
    "validate_display_name",
    "validate_retention",
]
