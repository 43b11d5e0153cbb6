"""AuthService over gRPC: proto ↔ primitives around one use case per RPC."""

from __future__ import annotations

from google.protobuf import empty_pb2
from railguard.auth.v1 import auth_service_pb2 as pb
from railguard.auth.v1 import auth_service_pb2_grpc
from servicekit import current
from servicekit.wire import parse_name, timestamp

from auth_service.domain import Session, User
from auth_service.usecases import AuthService, TokenPair

SESSION = "users/me/sessions/{session}"


def _user(u: User) -> pb.User:
    return pb.User(
        name=f"users/{u.id}",
        id=u.id,
        email=u.email,
        display_name=u.display_name,
        create_time=timestamp(u.created_at),
    )


def _tokens(t: TokenPair) -> pb.TokenPair:
    return pb.TokenPair(
        access_token=t.access_token,
        token_type="Bearer",  # noqa: S106 - the token type, not a secret
        expires_in=t.expires_in,
        refresh_token=t.refresh_token,
        refresh_expires_in=t.refresh_expires_in,
    )


def _session(s: Session, current_id: str) -> pb.Session:
    return pb.Session(
        name=f"users/me/sessions/{s.id}",
        current=s.id == current_id,
        create_time=timestamp(s.created_at),
        last_use_time=timestamp(s.last_used_at),
        expire_time=timestamp(s.absolute_expires_at),
        client_ip=s.client_ip,
        aal=s.aal,
    )


class AuthServicer(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, service: AuthService) -> None:
        self.service = service

    async def SignUp(self, request: pb.SignUpRequest, context: object) -> pb.User:
        user = await self.service.sign_up(request.email, request.password, request.display_name)
        return _user(user)

    async def Login(self, request: pb.LoginRequest, context: object) -> pb.LoginResponse:
        tokens = await self.service.login(
            request.email, request.password, current().principal.client_ip
        )
        return pb.LoginResponse(tokens=_tokens(tokens))

    async def RefreshToken(
        self, request: pb.RefreshTokenRequest, context: object
    ) -> pb.RefreshTokenResponse:
        return pb.RefreshTokenResponse(
            tokens=_tokens(await self.service.refresh(request.refresh_token))
        )

    async def Logout(self, request: pb.LogoutRequest, context: object) -> empty_pb2.Empty:
        principal = current().principal
        await self.service.logout(principal.require_user(), principal.session_id)
        return empty_pb2.Empty()

    async def GetCurrentUser(self, request: pb.GetCurrentUserRequest, context: object) -> pb.User:
        return _user(await self.service.current_user(current().principal.require_user()))

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: object
    ) -> pb.ListSessionsResponse:
        principal = current().principal
        sessions, token = await self.service.list_sessions(
            principal.require_user(), request.page_size, request.page_token
        )
        return pb.ListSessionsResponse(
            sessions=[_session(s, principal.session_id) for s in sessions], next_page_token=token
        )

    async def RevokeSession(
        self, request: pb.RevokeSessionRequest, context: object
    ) -> empty_pb2.Empty:
        session_id = parse_name(SESSION, request.name)["session"]
        await self.service.revoke_session(current().principal.require_user(), session_id)
        return empty_pb2.Empty()

    async def ChangePassword(
        self, request: pb.ChangePasswordRequest, context: object
    ) -> empty_pb2.Empty:
        principal = current().principal
        await self.service.change_password(
            principal.require_user(),
            principal.session_id,
            request.current_password,
            request.new_password,
        )
        return empty_pb2.Empty()

    async def GetJwks(self, request: pb.GetJwksRequest, context: object) -> pb.GetJwksResponse:
        return pb.GetJwksResponse(jwks_json=await self.service.jwks())

    async def LookupUser(self, request: pb.LookupUserRequest, context: object) -> pb.User:
        return _user(await self.service.lookup_user(request.email, request.user_id))
