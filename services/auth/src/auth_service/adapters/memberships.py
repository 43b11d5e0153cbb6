"""The user's workspace memberships, removed through the workspaces service's internal RPC."""

from __future__ import annotations

import grpc
from railguard.workspaces.v1 import workspaces_service_pb2 as ws_pb
from railguard.workspaces.v1 import workspaces_service_pb2_grpc as ws_grpc
from servicekit.clients import call


class GrpcInvitations:
    """Whether an address has a pending invitation (the workspaces service's internal RPC)."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = ws_grpc.WorkspacesServiceStub(channel)

    async def pending_for(self, email: str) -> bool:
        response = await call(
            self._stub.CheckPendingInvitation, ws_pb.CheckPendingInvitationRequest(email=email)
        )
        return response.pending


class GrpcMemberships:
    """``remove_all`` answers the workspaces the user is the last Owner of (then nothing was
    removed), or an empty list once every membership is gone."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._stub = ws_grpc.WorkspacesServiceStub(channel)

    async def remove_all(self, user_id: str) -> list[tuple[str, str]]:
        response = await call(
            self._stub.RemoveUserMemberships, ws_pb.RemoveUserMembershipsRequest(user_id=user_id)
        )
        return [(ws.name, ws.display_name) for ws in response.sole_owner_workspaces]
