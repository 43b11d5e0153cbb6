"""AuthService over gRPC: proto ↔ primitives around one use case per RPC."""

from __future__ import annotations

from google.protobuf import empty_pb2
from railguard.access.v1 import access_pb2
from railguard.auth.v1 import auth_service_pb2 as pb
from railguard.auth.v1 import auth_service_pb2_grpc
from servicekit import Principal, current
from servicekit.lifecycle import LifecycleApplier, LifecycleReceiver, WorkspaceGate
from servicekit.wire import parse_name, timestamp

from auth_service.domain import Assurance, DeploymentPin, Session, User
from auth_service.domain import totp as totp_rules
from auth_service.usecases import AuthUseCases, ChallengeIssued, TokenPair, errors
from auth_service.usecases.session_state import SessionState

SESSION = "users/me/sessions/{session}"
PIN = "workspaces/{workspace}/deployments/{deployment}/pin"
DEPLOYMENT = "workspaces/{workspace}/deployments/{deployment}"


def _user(u: User) -> pb.User:
    return pb.User(
        name=f"users/{u.id}",
        id=u.id,
        email=u.email,
        display_name=u.display_name,
        create_time=timestamp(u.created_at),
        email_verified=u.email_verified,
    )


def _tokens(t: TokenPair) -> pb.TokenPair:
    return pb.TokenPair(
        access_token=t.access_token,
        token_type="Bearer",  # noqa: S106 - the token type, not a secret
        expires_in=t.expires_in,
        refresh_token=t.refresh_token,
        refresh_expires_in=t.refresh_expires_in,
    )


def _assurance(principal: Principal) -> Assurance:
    return Assurance(aal=principal.aal, amr=principal.amr, auth_time=principal.auth_time)


def _pin(p: DeploymentPin) -> pb.DeploymentPin:
    return pb.DeploymentPin(
        name=f"workspaces/{p.workspace_id}/deployments/{p.deployment_id}/pin",
        update_time=timestamp(p.updated_at),
    )


def _pin_target(name: str) -> tuple[str, str]:
    """The (workspace, deployment) of a PIN name, checked against the caller (defence in depth:
    the edge already did): another workspace answers NOT_FOUND, a role below Admin is refused."""
    parts = parse_name(PIN, name)
    principal = current().principal
    principal.require_workspace(parts["workspace"])
    principal.require_role(access_pb2.ROLE_ADMIN)
    return parts["workspace"], parts["deployment"]


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


class AuthServicer(LifecycleReceiver, auth_service_pb2_grpc.AuthServiceServicer):
    lifecycle_response = pb.ApplyWorkspaceLifecycleResponse

    def __init__(
        self,
        auth: AuthUseCases,
        *,
        lifecycle: LifecycleApplier,
        gate: WorkspaceGate,
        session_state: SessionState,
    ) -> None:
        """``gate`` answers whether a workspace is deleted (its PINs stop); ``lifecycle`` applies
        the workspaces service's lifecycle events (a purge deletes the workspace's PINs);
        ``session_state`` answers the edge whether a session is still active."""
        self.auth, self.lifecycle, self.gate = auth, lifecycle, gate
        self.session_state = session_state

    async def SignUp(self, request: pb.SignUpRequest, context: object) -> pb.User:
        user = await self.auth.accounts.sign_up(
            request.email, request.password, request.display_name, current().principal.client_ip
        )
        return _user(user)

    async def VerifyEmail(self, request: pb.VerifyEmailRequest, context: object) -> empty_pb2.Empty:
        await self.auth.accounts.verify_email(request.token, current().principal.client_ip)
        return empty_pb2.Empty()

    async def SendVerificationEmail(
        self, request: pb.SendVerificationEmailRequest, context: object
    ) -> empty_pb2.Empty:
        principal = current().principal
        await self.auth.accounts.send_verification_email(
            principal.require_user(), principal.client_ip
        )
        return empty_pb2.Empty()

    async def ChangeEmail(self, request: pb.ChangeEmailRequest, context: object) -> empty_pb2.Empty:
        principal = current().principal
        await self.auth.accounts.change_email(
            principal.require_user(), request.new_email, _assurance(principal), principal.client_ip
        )
        return empty_pb2.Empty()

    async def Login(self, request: pb.LoginRequest, context: object) -> pb.LoginResponse:
        result = await self.auth.sessions.login(
            request.email, request.password, current().principal.client_ip
        )
        if isinstance(result, ChallengeIssued):
            return pb.LoginResponse(
                mfa_challenge=pb.MfaChallenge(
                    challenge_token=result.challenge_token,
                    expires_in=result.expires_in,
                    methods=list(result.methods),
                )
            )
        return pb.LoginResponse(tokens=_tokens(result))

    async def RefreshToken(
        self, request: pb.RefreshTokenRequest, context: object
    ) -> pb.RefreshTokenResponse:
        return pb.RefreshTokenResponse(
            tokens=_tokens(await self.auth.refresh.refresh(request.refresh_token))
        )

    async def DeleteCurrentUser(
        self, request: pb.DeleteCurrentUserRequest, context: object
    ) -> empty_pb2.Empty:
        principal = current().principal
        await self.auth.accounts.delete_account(principal.require_user(), _assurance(principal))
        return empty_pb2.Empty()

    async def RequestPasswordReset(
        self, request: pb.RequestPasswordResetRequest, context: object
    ) -> empty_pb2.Empty:
        await self.auth.passwords.request_password_reset(
            request.email, current().principal.client_ip
        )
        return empty_pb2.Empty()

    async def ResetPassword(
        self, request: pb.ResetPasswordRequest, context: object
    ) -> empty_pb2.Empty:
        await self.auth.passwords.reset_password(
            request.token, request.new_password, current().principal.client_ip
        )
        return empty_pb2.Empty()

    async def Logout(self, request: pb.LogoutRequest, context: object) -> empty_pb2.Empty:
        principal = current().principal
        await self.auth.sessions.logout(principal.require_user(), principal.session_id)
        return empty_pb2.Empty()

    async def GetCurrentUser(self, request: pb.GetCurrentUserRequest, context: object) -> pb.User:
        return _user(await self.auth.accounts.current_user(current().principal.require_user()))

    async def ListSessions(
        self, request: pb.ListSessionsRequest, context: object
    ) -> pb.ListSessionsResponse:
        principal = current().principal
        sessions, token = await self.auth.sessions.list_sessions(
            principal.require_user(), request.page_size, request.page_token
        )
        return pb.ListSessionsResponse(
            sessions=[_session(s, principal.session_id) for s in sessions], next_page_token=token
        )

    async def RevokeSession(
        self, request: pb.RevokeSessionRequest, context: object
    ) -> empty_pb2.Empty:
        session_id = parse_name(SESSION, request.name)["session"]
        await self.auth.sessions.revoke_session(current().principal.require_user(), session_id)
        return empty_pb2.Empty()

    async def ChangePassword(
        self, request: pb.ChangePasswordRequest, context: object
    ) -> empty_pb2.Empty:
        principal = current().principal
        await self.auth.passwords.change_password(
            principal.require_user(),
            principal.session_id,
            request.current_password,
            request.new_password,
            _assurance(principal),
        )
        return empty_pb2.Empty()

    async def GetJwks(self, request: pb.GetJwksRequest, context: object) -> pb.GetJwksResponse:
        return pb.GetJwksResponse(jwks_json=await self.auth.signing_keys.jwks())

    async def GetSessionState(
        self, request: pb.GetSessionStateRequest, context: object
    ) -> pb.SessionState:
        return pb.SessionState(active=await self.session_state.active(request.session_id))

    async def LookupUser(self, request: pb.LookupUserRequest, context: object) -> pb.User:
        return _user(await self.auth.accounts.lookup_user(request.email, request.user_id))

    # ---- MFA -----------------------------------------------------------------------------------

    async def VerifyMfaChallenge(
        self, request: pb.VerifyMfaChallengeRequest, context: object
    ) -> pb.VerifyMfaChallengeResponse:
        tokens = await self.auth.mfa.verify_mfa_challenge(
            request.challenge_token,
            request.totp_code,
            request.recovery_code,
            current().principal.client_ip,
        )
        return pb.VerifyMfaChallengeResponse(tokens=_tokens(tokens))

    async def GetMfaStatus(self, request: pb.GetMfaStatusRequest, context: object) -> pb.MfaStatus:
        state = await self.auth.mfa.mfa_status(current().principal.require_user())
        return pb.MfaStatus(
            totp_enabled=state.totp_enabled,
            totp_pending=state.totp_pending,
            totp_enable_time=timestamp(state.totp_enabled_at),
            recovery_codes_remaining=state.recovery_codes_remaining,
        )

    async def BeginTotpEnrollment(
        self, request: pb.BeginTotpEnrollmentRequest, context: object
    ) -> pb.BeginTotpEnrollmentResponse:
        principal = current().principal
        enrollment = await self.auth.mfa.begin_totp_enrollment(
            principal.require_user(), _assurance(principal)
        )
        return pb.BeginTotpEnrollmentResponse(
            otpauth_uri=enrollment.otpauth_uri,
            secret=enrollment.secret,
            digits=totp_rules.DIGITS,
            period=totp_rules.PERIOD,
            algorithm=totp_rules.ALGORITHM,
        )

    async def ConfirmTotpEnrollment(
        self, request: pb.ConfirmTotpEnrollmentRequest, context: object
    ) -> pb.ConfirmTotpEnrollmentResponse:
        principal = current().principal
        codes, tokens = await self.auth.mfa.confirm_totp_enrollment(
            principal.require_user(), principal.session_id, request.code, principal.client_ip
        )
        return pb.ConfirmTotpEnrollmentResponse(recovery_codes=codes, tokens=_tokens(tokens))

    async def DisableTotp(self, request: pb.DisableTotpRequest, context: object) -> empty_pb2.Empty:
        principal = current().principal
        await self.auth.mfa.disable_totp(principal.require_user(), _assurance(principal))
        return empty_pb2.Empty()

    async def RegenerateRecoveryCodes(
        self, request: pb.RegenerateRecoveryCodesRequest, context: object
    ) -> pb.RegenerateRecoveryCodesResponse:
        principal = current().principal
        codes = await self.auth.recovery.regenerate_recovery_codes(
            principal.require_user(), _assurance(principal)
        )
        return pb.RegenerateRecoveryCodesResponse(recovery_codes=codes)

    # ---- deployment PINs -----------------------------------------------------------------------

    async def _live_pin_target(self, name: str) -> tuple[str, str]:
        """:func:`_pin_target`, in a workspace that is not deleted (its PINs stop with it)."""
        workspace, deployment = _pin_target(name)
        await self.gate.require_alive(workspace)
        return workspace, deployment

    async def SetDeploymentPin(
        self, request: pb.SetDeploymentPinRequest, context: object
    ) -> pb.DeploymentPin:
        workspace, deployment = await self._live_pin_target(request.name)
        current().principal.require_unrestricted_key()  # a PIN carries no CIDR nor expiry
        return _pin(await self.auth.pins.set_deployment_pin(workspace, deployment, request.pin))

    async def GetDeploymentPin(
        self, request: pb.GetDeploymentPinRequest, context: object
    ) -> pb.DeploymentPin:
        workspace, deployment = await self._live_pin_target(request.name)
        return _pin(await self.auth.pins.get_deployment_pin(workspace, deployment))

    async def ClearDeploymentPin(
        self, request: pb.ClearDeploymentPinRequest, context: object
    ) -> empty_pb2.Empty:
        workspace, deployment = await self._live_pin_target(request.name)
        await self.auth.pins.clear_deployment_pin(workspace, deployment)
        return empty_pb2.Empty()

    async def VerifyDeploymentPin(
        self, request: pb.VerifyDeploymentPinRequest, context: object
    ) -> pb.VerifyDeploymentPinResponse:
        parts = parse_name(DEPLOYMENT, request.name)
        token = await self.auth.pins.verify_deployment_pin(
            parts["workspace"], parts["deployment"], request.pin, current().principal.client_ip
        )
        # checked after the PIN (same work as a success): a deleted workspace's deployment
        # answers exactly like a wrong PIN, and the token just signed is dropped
        if not await self.gate.alive(parts["workspace"]):
            raise errors.invalid_pin()
        return pb.VerifyDeploymentPinResponse(
            access_token=token.access_token,
            token_type="Bearer",  # noqa: S106 - the token type, not a secret
            expires_in=token.expires_in,
        )
