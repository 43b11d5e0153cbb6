"""WorkspacesService over gRPC: proto ↔ primitives around one use case per RPC."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from google.protobuf import empty_pb2
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from railguard.workspaces.v1 import workspaces_service_pb2_grpc
from servicekit import FailedPrecondition, InvalidArgument, current
from servicekit.audit import AuditEvent
from servicekit.audit_grpc import event_from_proto, event_to_proto
from servicekit.context import scoped_name
from servicekit.wire import mask_paths, parse_name, timestamp

from workspaces_service.accounts import AccountService
from workspaces_service.domain import Member, Role, Workspace
from workspaces_service.domain.audit_log import AuditEntry
from workspaces_service.domain.invitation import Invitation
from workspaces_service.invitations import InvitationService
from workspaces_service.security_log import SecurityLogService
from workspaces_service.usecases import UPDATABLE_FIELDS, WorkspacesService

WS = "workspaces/{workspace}"
MEMBER = "workspaces/{workspace}/members/{member}"
INVITATION = "workspaces/{workspace}/invitations/{invitation}"


def _workspace(ws: Workspace, role: Role | int) -> pb.Workspace:
    return pb.Workspace(
        name=f"workspaces/{ws.id}",
        display_name=ws.display_name,
        plan=int(ws.plan),  # type: ignore[arg-type]
        mfa_required=ws.mfa_required,
        verified_email_required=ws.verified_email_required,
        retention_days=ws.retention_days,
        state=pb.WORKSPACE_STATE_DELETED if ws.deleted else pb.WORKSPACE_STATE_ACTIVE,
        create_time=timestamp(ws.created_at),
        update_time=timestamp(ws.updated_at),
        delete_time=timestamp(ws.deleted_at),
        purge_time=timestamp(ws.purge_at),
        caller_role=int(role),  # type: ignore[arg-type]
    )


def _member(m: Member) -> pb.Member:
    return pb.Member(
        name=f"workspaces/{m.workspace_id}/members/{m.user_id}",
        email=m.email,
        role=int(m.role),  # type: ignore[arg-type]
        create_time=timestamp(m.created_at),
    )


def _invitation(i: Invitation, state: int) -> pb.Invitation:
    return pb.Invitation(
        name=f"workspaces/{i.workspace_id}/invitations/{i.id}",
        email=i.email,
        role=int(i.role),  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        inviter=f"users/{i.invited_by}",
        create_time=timestamp(i.created_at),
        expire_time=timestamp(i.expires_at),
    )


def _audit_event(entry: AuditEntry) -> pb.AuditEvent:
    msg = event_to_proto(entry.event)
    msg.name = f"workspaces/{entry.event.workspace_id}/auditEvents/{entry.sequence}"
    msg.sequence, msg.source = entry.sequence, entry.source
    msg.prev_hash, msg.hash = entry.prev_hash, entry.hash
    return msg


def _events(request: pb.AppendAuditEventsRequest) -> list[AuditEvent]:
    events = []
    for i, msg in enumerate(request.events):
        try:
            events.append(event_from_proto(msg))
        except ValueError as err:  # includes AuditMetadataError: a secret-like key is refused
            raise InvalidArgument.field(
                f"events[{i}]", str(err), reason="INVALID_AUDIT_EVENT"
            ) from None
    return events


class WorkspacesServicer(workspaces_service_pb2_grpc.WorkspacesServiceServicer):
    def __init__(
        self,
        service: WorkspacesService,
        invitations: InvitationService | None = None,
        security_log: SecurityLogService | None = None,
        accounts: AccountService | None = None,
    ) -> None:
        self.service = service
        self.accounts = accounts
        self.invitations = invitations
        self.security_log = security_log

    async def CheckPendingInvitation(
        self, request: pb.CheckPendingInvitationRequest, context: object
    ) -> pb.CheckPendingInvitationResponse:
        return pb.CheckPendingInvitationResponse(
            pending=await self._invites().pending_for(request.email)
        )

    async def RemoveUserMemberships(
        self, request: pb.RemoveUserMembershipsRequest, context: object
    ) -> pb.RemoveUserMembershipsResponse:
        if self.accounts is None:
            raise FailedPrecondition("account removal is not enabled", reason="NOT_ENABLED")
        if not request.user_id:
            raise InvalidArgument.field("user_id", "is required", reason="INVALID_ARGUMENT")
        removal = await self.accounts.remove_user(request.user_id)
        return pb.RemoveUserMembershipsResponse(
            removed=removal.removed,
            sole_owner_workspaces=[_workspace(ws, Role.OWNER) for ws in removal.blocking],
        )

    async def ListMySecurityEvents(
        self, request: pb.ListMySecurityEventsRequest, context: object
    ) -> pb.ListMySecurityEventsResponse:
        if self.security_log is None:
            raise FailedPrecondition("the security log is not enabled", reason="NOT_ENABLED")
        entries, token = await self.security_log.list_mine(
            current().principal.require_user(), request.page_size, request.page_token
        )
        events = []
        for entry in entries:
            msg = event_to_proto(entry.event)
            msg.name = f"users/me/securityEvents/{entry.sequence}"
            msg.sequence = entry.sequence
            events.append(msg)
        return pb.ListMySecurityEventsResponse(events=events, next_page_token=token)

    def _invites(self) -> InvitationService:
        if self.invitations is None:
            raise FailedPrecondition("invitations are not enabled", reason="NOT_ENABLED")
        return self.invitations

    async def CreateInvitation(
        self, request: pb.CreateInvitationRequest, context: object
    ) -> pb.Invitation:
        ws_id = scoped_name(request.parent, WS, "parent")["workspace"]
        inv = request.invitation
        created = await self._invites().create(
            current().principal.require_user(), ws_id, inv.email, inv.role
        )
        return _invitation(created, self._invites().state_of(created))

    async def ListInvitations(
        self, request: pb.ListInvitationsRequest, context: object
    ) -> pb.ListInvitationsResponse:
        ws_id = scoped_name(request.parent, WS, "parent")["workspace"]
        rows, token = await self._invites().list(
            current().principal.require_user(), ws_id, request.page_size, request.page_token
        )
        return pb.ListInvitationsResponse(
            invitations=[_invitation(i, self._invites().state_of(i)) for i in rows],
            next_page_token=token,
        )

    async def RevokeInvitation(
        self, request: pb.RevokeInvitationRequest, context: object
    ) -> pb.Invitation:
        parts = scoped_name(request.name, INVITATION)
        revoked = await self._invites().revoke(
            current().principal.require_user(), parts["workspace"], parts["invitation"]
        )
        return _invitation(revoked, self._invites().state_of(revoked))

    async def AcceptInvitation(
        self, request: pb.AcceptInvitationRequest, context: object
    ) -> pb.Member:
        member = await self._invites().accept(current().principal.require_user(), request.token)
        return _member(member)

    async def CreateWorkspace(
        self, request: pb.CreateWorkspaceRequest, context: object
    ) -> pb.Workspace:
        w = request.workspace
        ws, role = await self.service.create(
            current().principal.require_user(),
            w.display_name,
            w.mfa_required,
            w.retention_days,
            request.request_id,
        )
        return _workspace(ws, role)

    async def GetWorkspace(self, request: pb.GetWorkspaceRequest, context: object) -> pb.Workspace:
        ws_id = scoped_name(request.name, WS)["workspace"]
        return _workspace(*await self.service.get(current().principal.require_user(), ws_id))

    async def ListWorkspaces(
        self, request: pb.ListWorkspacesRequest, context: object
    ) -> pb.ListWorkspacesResponse:
        rows, token = await self.service.list(
            current().principal.require_user(),
            request.page_size,
            request.page_token,
            request.show_deleted,
        )
        return pb.ListWorkspacesResponse(
            workspaces=[_workspace(ws, r) for ws, r in rows], next_page_token=token
        )

    async def UpdateWorkspace(
        self, request: pb.UpdateWorkspaceRequest, context: object
    ) -> pb.Workspace:
        ws_id = scoped_name(request.workspace.name, WS, "workspace.name")["workspace"]
        paths = mask_paths(request.update_mask, UPDATABLE_FIELDS)
        changes = {path: getattr(request.workspace, path) for path in paths}
        return _workspace(
            *await self.service.update(current().principal.require_user(), ws_id, changes)
        )

    async def DeleteWorkspace(
        self, request: pb.DeleteWorkspaceRequest, context: object
    ) -> pb.Workspace:
        return await self._as_owner(self.service.delete, request.name)

    async def UndeleteWorkspace(
        self, request: pb.UndeleteWorkspaceRequest, context: object
    ) -> pb.Workspace:
        return await self._as_owner(self.service.undelete, request.name)

    async def _as_owner(
        self, change: Callable[[str, str], Awaitable[Workspace]], name: str
    ) -> pb.Workspace:
        """Delete or restore the named workspace (only its Owner may), as the Owner sees it."""
        ws_id = scoped_name(name, WS)["workspace"]
        return _workspace(await change(current().principal.require_user(), ws_id), Role.OWNER)

    async def ListMembers(
        self, request: pb.ListMembersRequest, context: object
    ) -> pb.ListMembersResponse:
        ws_id = scoped_name(request.parent, WS, "parent")["workspace"]
        members, token = await self.service.list_members(
            current().principal.require_user(), ws_id, request.page_size, request.page_token
        )
        return pb.ListMembersResponse(members=[_member(m) for m in members], next_page_token=token)

    async def CreateMember(self, request: pb.CreateMemberRequest, context: object) -> pb.Member:
        ws_id = scoped_name(request.parent, WS, "parent")["workspace"]
        member = await self.service.add_member(
            current().principal.require_user(), ws_id, request.member.email, request.member.role
        )
        return _member(member)

    async def UpdateMember(self, request: pb.UpdateMemberRequest, context: object) -> pb.Member:
        parts = scoped_name(request.member.name, MEMBER, "member.name")
        mask_paths(request.update_mask, frozenset({"role"}))
        member = await self.service.update_member(
            current().principal.require_user(),
            parts["workspace"],
            parts["member"],
            request.member.role,
        )
        return _member(member)

    async def DeleteMember(
        self, request: pb.DeleteMemberRequest, context: object
    ) -> empty_pb2.Empty:
        parts = scoped_name(request.name, MEMBER)
        await self.service.remove_member(
            current().principal.require_user(), parts["workspace"], parts["member"]
        )
        return empty_pb2.Empty()

    async def TransferOwnership(
        self, request: pb.TransferOwnershipRequest, context: object
    ) -> pb.Workspace:
        ws_id = scoped_name(request.name, WS)["workspace"]
        target = parse_name(MEMBER, request.new_owner, "new_owner")
        if target["workspace"] != ws_id:
            raise InvalidArgument.field(
                "new_owner", "must be a member of this workspace", reason="INVALID_NAME"
            )
        return _workspace(
            *await self.service.transfer_ownership(
                current().principal.require_user(), ws_id, target["member"]
            )
        )

    async def ResolveAccess(
        self, request: pb.ResolveAccessRequest, context: object
    ) -> pb.ResolveAccessResponse:
        view = await self.service.resolve_access(request.user_id, request.workspace_id)
        return pb.ResolveAccessResponse(
            workspace_exists=view.workspace_exists,
            member=view.member,
            role=view.role,  # type: ignore[arg-type]
            state=pb.WORKSPACE_STATE_DELETED if view.deleted else pb.WORKSPACE_STATE_ACTIVE,
            mfa_required=view.mfa_required,
            plan=view.plan,  # type: ignore[arg-type]
            verified_email_required=view.verified_email_required,
        )

    async def AppendAuditEvents(
        self, request: pb.AppendAuditEventsRequest, context: object
    ) -> pb.AppendAuditEventsResponse:
        appended, duplicates = await self.service.append_audit_events(
            _events(request), current().caller
        )
        return pb.AppendAuditEventsResponse(appended=appended, duplicates=duplicates)

    async def ListAuditEvents(
        self, request: pb.ListAuditEventsRequest, context: object
    ) -> pb.ListAuditEventsResponse:
        ws_id = scoped_name(request.parent, WS, "parent")["workspace"]
        entries, token = await self.service.list_audit_events(
            current().principal.require_user(), ws_id, request.page_size, request.page_token
        )
        return pb.ListAuditEventsResponse(
            audit_events=[_audit_event(e) for e in entries], next_page_token=token
        )

    async def StreamAuditEvents(
        self, request: pb.StreamAuditEventsRequest, context: object
    ) -> AsyncIterator[pb.AuditEvent]:
        ws_id = scoped_name(request.parent, WS, "parent")["workspace"]
        async for entry in self.service.stream_audit_events(
            current().principal.require_user(), ws_id, request.after_sequence
        ):
            yield _audit_event(entry)

    async def VerifyAuditChain(
        self, request: pb.VerifyAuditChainRequest, context: object
    ) -> pb.VerifyAuditChainResponse:
        ws_id = scoped_name(request.name, WS)["workspace"]
        report = await self.service.verify_audit_chain(current().principal.require_user(), ws_id)
        return pb.VerifyAuditChainResponse(
            ok=report.ok,
            verified_events=report.verified,
            first_broken_sequence=report.first_broken_sequence,
            head_sequence=report.head.sequence,
            head_hash=report.head.hash,
        )
