"""The edge's gRPC side: one mTLS channel per service, a generic caller per RPC, ResolveAccess, JWKS."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.message import Message
from railguard.auth.v1 import auth_service_pb2, auth_service_pb2_grpc
from railguard.workspaces.v1 import workspaces_service_pb2, workspaces_service_pb2_grpc
from servicekit.access import RpcInfo
from servicekit.clients import call, open_channel, outgoing_metadata
from servicekit.context import Principal
from servicekit.settings import Settings

from edge_service.policy import AccessView

__all__ = ["SESSION_STATE_TIMEOUT", "Upstreams"]

# a hung auth must not hold every JWT request for call()'s default 5 s; a miss is a 503
SESSION_STATE_TIMEOUT = 2.0

_SERVICE_PEER = {
    "railguard.auth.v1.AuthService": "auth",
    "railguard.workspaces.v1.WorkspacesService": "workspaces",
    "railguard.keys.v1.KeysService": "keys",
    "railguard.credentials.v1.CredentialsService": "credentials",
}


class Upstreams:
    def __init__(self, settings: Settings, infos: list[RpcInfo]) -> None:
        self.channels: dict[str, grpc.aio.Channel] = {}
        for peer in sorted(set(_SERVICE_PEER.values())):
            self.channels[peer] = open_channel(settings, getattr(settings.peers, peer))
        self._callers: dict[str, Any] = {}
        for info in infos:
            peer = _SERVICE_PEER.get(info.service.full_name, "")
            if not peer:
                continue
            response_class = message_factory.GetMessageClass(info.method.output_type)
            self._callers[info.full_method] = self.channels[peer].unary_unary(
                info.full_method,
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=response_class.FromString,
            )
        self._auth = auth_service_pb2_grpc.AuthServiceStub(self.channels["auth"])
        self._workspaces = workspaces_service_pb2_grpc.WorkspacesServiceStub(
            self.channels["workspaces"]
        )

    async def invoke(
        self,
        info: RpcInfo,
        request: Message,
        principal: Principal,
        request_id: str,
        deadline: float,
    ) -> Message:
        """Forward a request; raises ``grpc.aio.AioRpcError`` for the caller to map."""
        caller = self._callers[info.full_method]
        result: Message = await caller(
            request, timeout=deadline, metadata=outgoing_metadata(principal, request_id)
        )
        return result

    async def jwks(self) -> str:
        response = await call(self._auth.GetJwks, auth_service_pb2.GetJwksRequest())
        return response.jwks_json

    async def session_active(self, session_id: str) -> bool:
        """Auth's answer whether a session is active (the session check's fallback)."""
        response = await call(
            self._auth.GetSessionState,
            auth_service_pb2.GetSessionStateRequest(session_id=session_id),
            timeout=SESSION_STATE_TIMEOUT,
        )
        return response.active

    async def resolve(self, user_id: str, workspace_id: str) -> AccessView:
        r = await call(
            self._workspaces.ResolveAccess,
            workspaces_service_pb2.ResolveAccessRequest(user_id=user_id, workspace_id=workspace_id),
        )
        return AccessView(
            workspace_exists=r.workspace_exists,
            member=r.member,
            role=r.role,
            deleted=r.state == workspaces_service_pb2.WORKSPACE_STATE_DELETED,
            mfa_required=r.mfa_required,
            plan=r.plan,
            verified_email_required=r.verified_email_required,
        )

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()
