"""Who may call an RPC, decided at the edge from its access rule and the caller's principal.

The decision order is fixed: public → authenticated → API keys allowed → workspace exists and
caller is a member (else NOT_FOUND, exactly like a missing resource) → workspace alive → role →
MFA assurance → verified email. Services check again (defence in depth); this is where it is cheap.

MFA applies to API keys as to sessions: a key carries the assurance its creator had when creating
(or last rotating) it, so in a workspace with ``mfa_required`` a key made at aal1 is refused with
``MFA_REQUIRED`` like an aal1 session.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from railguard.access.v1 import access_pb2
from servicekit.context import Principal
from servicekit.errors import NotFound, PermissionDenied, Unauthenticated
from servicekit.roles import AccessView, role_at_least

__all__ = ["AccessView", "WorkspaceAccess", "authorize"]


class WorkspaceAccess(Protocol):
    async def resolve(self, user_id: str, workspace_id: str) -> AccessView: ...


def _not_found() -> NotFound:
    return NotFound("resource not found", reason="NOT_FOUND")


async def authorize(
    rule: access_pb2.AccessRule,
    principal: Principal | None,
    workspace_id: str | None,
    access: WorkspaceAccess,
) -> tuple[Principal, AccessView | None]:
    """The principal to forward (with workspace and role filled in), or a domain error."""
    if rule.public:
        return principal or Principal(), None
    if principal is None or not principal.user_id:
        raise Unauthenticated("authentication required", reason="UNAUTHENTICATED")
    if principal.is_api_key and not rule.scope:
        raise PermissionDenied("API keys cannot call this method", reason="API_KEY_NOT_ALLOWED")
    if rule.min_role == access_pb2.ROLE_UNSPECIFIED:
        return principal, None
    if not workspace_id:
        raise _not_found()
    if principal.is_api_key and principal.workspace_id != workspace_id:
        raise _not_found()  # a key is bound to its workspace
    view = await access.resolve(principal.user_id, workspace_id)
    if not view.workspace_exists or not view.member:
        raise _not_found()
    if view.deleted and not rule.allow_deleted_workspace:
        raise NotFound("the workspace is deleted", reason="WORKSPACE_DELETED")
    if not role_at_least(view.role, rule.min_role):
        raise PermissionDenied("your role does not allow this action", reason="ROLE_TOO_LOW")
    if view.mfa_required and principal.aal != "aal2" and not rule.allow_low_assurance:
        raise PermissionDenied(
            "this workspace requires multi-factor authentication", reason="MFA_REQUIRED"
        )
    if (
        view.verified_email_required
        and not principal.email_verified
        and not principal.is_api_key
        and not rule.allow_low_assurance
    ):
        raise PermissionDenied(
            "this workspace requires a verified email address", reason="EMAIL_NOT_VERIFIED"
        )
    return replace(principal, workspace_id=workspace_id, role=view.role), view
