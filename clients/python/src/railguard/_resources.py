"""Every resource method, written once for both clients: the calls it makes and its result.

A method is a *flow*, a generator that yields each ``Call`` to send and receives its JSON body
(``@endpoint``), or a ``Pages`` description of a paged list (``@paged``). The transport runs it:
``client.py`` sends each call with ``httpx.Client`` and returns the result, ``aio.py`` awaits
``httpx.AsyncClient`` and returns a coroutine. So ``Client.users.me()`` is a ``User`` and
``AsyncClient.users.me()`` an awaitable ``User``, from the one ``Users.me`` below; the paths and
JSON names are ``ops``'s, retries and refresh ``_core``'s.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import cast

from railguard import ops
from railguard._core import AuthState, Json, tokens_from_login, tokens_of
from railguard._flows import Flow, M, Pages, Resource, endpoint, paged
from railguard.errors import MfaRequired
from railguard.models import (
    ApiKey,
    AuditChainReport,
    AuditEvent,
    CreatedApiKey,
    CreatedWebhookTrigger,
    Credential,
    DeliveryReceipt,
    DeploymentPin,
    DeploymentToken,
    Member,
    MfaStatus,
    ScopeInfo,
    Session,
    TotpConfirmation,
    TotpEnrollment,
    User,
    WebhookDelivery,
    WebhookTrigger,
    WhoAmI,
    Workspace,
)
from railguard.session import Tokens

__all__ = [
    "Account",
    "ApiKeys",
    "AuditLog",
    "Credentials",
    "Deployments",
    "Members",
    "Mfa",
    "Sessions",
    "Users",
    "Webhooks",
    "Workspaces",
]


class Account(Resource[M]):
    """The client's own methods: sign up, log in (with the MFA step), log out, who am I."""

    @endpoint
    def sign_up(self, email: str, password: str, display_name: str = "") -> Flow[User]:
        return cast("User", (yield ops.sign_up(email, password, display_name)))

    @endpoint
    def login(
        self, email: str, password: str, *, totp_code: str = "", recovery_code: str = ""
    ) -> Flow[Tokens]:
        """Sign in. With MFA on, pass a code here, or catch ``MfaRequired`` and ``verify_mfa``."""
        body = yield ops.login(email, password)
        try:
            tokens = tokens_from_login(body)
        except MfaRequired as challenge:
            if not (totp_code or recovery_code):
                raise
            token = challenge.challenge_token
        else:
            self._t.set_tokens(tokens)
            return tokens
        return (yield from _verify_mfa(self._t, token, totp_code, recovery_code))

    @endpoint
    def verify_mfa(
        self, challenge_token: str, *, totp_code: str = "", recovery_code: str = ""
    ) -> Flow[Tokens]:
        return (yield from _verify_mfa(self._t, challenge_token, totp_code, recovery_code))

    @endpoint
    def logout(self) -> Flow[None]:
        """End this session server-side; its refresh token stops working."""
        yield ops.logout()
        self._t.tokens = None

    @endpoint
    def whoami(self) -> Flow[WhoAmI]:
        """The caller: a user (``userId``, ``aal``) or an API key (``workspace``, ``scopes``)."""
        return cast("WhoAmI", (yield ops.whoami()))

    @endpoint
    def jwks(self) -> Flow[Json]:
        return (yield ops.jwks())


def _verify_mfa(
    auth: AuthState, challenge: str, totp_code: str, recovery_code: str
) -> Flow[Tokens]:
    tokens = tokens_of((yield ops.verify_mfa(challenge, totp_code, recovery_code)))
    auth.set_tokens(tokens)
    return tokens


class Users(Resource[M]):
    """The signed-in user."""

    @endpoint
    def me(self) -> Flow[User]:
        return cast("User", (yield ops.get_me()))

    @endpoint
    def change_password(self, current_password: str, new_password: str) -> Flow[None]:
        yield ops.change_password(current_password, new_password)


class Sessions(Resource[M]):
    """The signed-in user's sessions (one per login)."""

    @paged
    def list(self, page_size: int | None = None) -> Pages[Session]:
        return Pages(lambda t: ops.list_sessions(page_size, t), "sessions")

    @endpoint
    def revoke(self, session: str) -> Flow[None]:
        yield ops.revoke_session(session)


class Mfa(Resource[M]):
    """TOTP enrollment and recovery codes of the signed-in user."""

    @endpoint
    def status(self) -> Flow[MfaStatus]:
        return cast("MfaStatus", (yield ops.mfa_status()))

    @endpoint
    def begin_totp(self) -> Flow[TotpEnrollment]:
        """``otpauthUri`` and ``secret`` to load into an authenticator app."""
        return cast("TotpEnrollment", (yield ops.begin_totp()))

    @endpoint
    def confirm_totp(self, code: str) -> Flow[TotpConfirmation]:
        """Turns TOTP on; returns the recovery codes (shown once). The session becomes aal2."""
        body = yield ops.confirm_totp(code)
        if body.get("tokens"):
            self._t.set_tokens(tokens_of(body))
        return cast("TotpConfirmation", body)

    @endpoint
    def disable_totp(self) -> Flow[None]:
        yield ops.disable_totp()

    @endpoint
    def regenerate_recovery_codes(self) -> Flow[list[str]]:
        return list((yield ops.regenerate_recovery_codes()).get("recoveryCodes") or [])


class Workspaces(Resource[M]):
    """Workspaces you are a member of; you own the ones you create."""

    @endpoint
    def create(
        self,
        display_name: str,
        *,
        mfa_required: bool | None = None,
        retention_days: int | None = None,
        request_id: str | None = None,
    ) -> Flow[Workspace]:
        return cast(
            "Workspace",
            (yield ops.create_workspace(display_name, mfa_required, retention_days, request_id)),
        )

    @endpoint
    def get(self, workspace: str) -> Flow[Workspace]:
        return cast("Workspace", (yield ops.get_workspace(workspace)))

    @paged
    def list(self, *, page_size: int | None = None, show_deleted: bool = False) -> Pages[Workspace]:
        return Pages(lambda t: ops.list_workspaces(page_size, t, show_deleted), "workspaces")

    @endpoint
    def update(
        self,
        workspace: str,
        *,
        display_name: str | None = None,
        mfa_required: bool | None = None,
        retention_days: int | None = None,
    ) -> Flow[Workspace]:
        fields = {
            "displayName": display_name,
            "mfaRequired": mfa_required,
            "retentionDays": retention_days,
        }
        return cast("Workspace", (yield ops.update_workspace(workspace, fields)))

    @endpoint
    def delete(self, workspace: str) -> Flow[Workspace]:
        return cast("Workspace", (yield ops.delete_workspace(workspace)))

    @endpoint
    def undelete(self, workspace: str) -> Flow[Workspace]:
        return cast("Workspace", (yield ops.undelete_workspace(workspace)))

    @endpoint
    def transfer_ownership(self, workspace: str, new_owner: str) -> Flow[Workspace]:
        """``new_owner`` is a member's user id or member name."""
        return cast("Workspace", (yield ops.transfer_ownership(workspace, new_owner)))


class Members(Resource[M]):
    """Members of a workspace; ``member`` is a user id or ``workspaces/<w>/members/<user id>``."""

    @paged
    def list(self, workspace: str, *, page_size: int | None = None) -> Pages[Member]:
        return Pages(lambda t: ops.list_members(workspace, page_size, t), "members")

    @endpoint
    def add(self, workspace: str, email: str, role: str = "ROLE_USER") -> Flow[Member]:
        return cast("Member", (yield ops.add_member(workspace, email, role)))

    @endpoint
    def set_role(self, workspace: str, member: str, role: str) -> Flow[Member]:
        return cast("Member", (yield ops.set_member_role(workspace, member, role)))

    @endpoint
    def remove(self, workspace: str, member: str) -> Flow[None]:
        yield ops.remove_member(workspace, member)


class ApiKeys(Resource[M]):
    """API keys of a workspace. The secret (``key``) is returned once, by create and rotate."""

    @endpoint
    def create(
        self,
        workspace: str,
        display_name: str,
        scopes: Sequence[str],
        *,
        environment: str = "ENVIRONMENT_LIVE",
        allowed_cidrs: Sequence[str] = (),
        allowed_origins: Sequence[str] = (),
        expire_time: str | None = None,
        request_id: str | None = None,
    ) -> Flow[CreatedApiKey]:
        return cast(
            "CreatedApiKey",
            (
                yield ops.create_api_key(
                    workspace,
                    display_name,
                    scopes,
                    environment,
                    allowed_cidrs,
                    allowed_origins,
                    expire_time,
                    request_id,
                )
            ),
        )

    @endpoint
    def get(self, name: str) -> Flow[ApiKey]:
        return cast("ApiKey", (yield ops.get_api_key(name)))

    @paged
    def list(
        self, workspace: str, *, page_size: int | None = None, show_deleted: bool = False
    ) -> Pages[ApiKey]:
        return Pages(lambda t: ops.list_api_keys(workspace, page_size, t, show_deleted), "apiKeys")

    @endpoint
    def update(
        self,
        name: str,
        *,
        display_name: str | None = None,
        scopes: Sequence[str] | None = None,
        allowed_cidrs: Sequence[str] | None = None,
        allowed_origins: Sequence[str] | None = None,
        expire_time: str | None = None,
    ) -> Flow[ApiKey]:
        fields = {
            "displayName": display_name,
            "scopes": None if scopes is None else list(scopes),
            "allowedCidrs": None if allowed_cidrs is None else list(allowed_cidrs),
            "allowedOrigins": None if allowed_origins is None else list(allowed_origins),
            "expireTime": expire_time,
        }
        return cast("ApiKey", (yield ops.update_api_key(name, fields)))

    @endpoint
    def rotate(self, name: str, *, grace_period_seconds: int | None = None) -> Flow[CreatedApiKey]:
        return cast("CreatedApiKey", (yield ops.rotate_api_key(name, grace_period_seconds)))

    @endpoint
    def revoke(self, name: str) -> Flow[ApiKey]:
        return cast("ApiKey", (yield ops.revoke_api_key(name)))

    @endpoint
    def delete(self, name: str) -> Flow[ApiKey]:
        return cast("ApiKey", (yield ops.delete_api_key(name)))

    @endpoint
    def undelete(self, name: str) -> Flow[ApiKey]:
        return cast("ApiKey", (yield ops.undelete_api_key(name)))

    @endpoint
    def scopes(self) -> Flow[builtins.list[ScopeInfo]]:
        """The scope catalogue: every scope, the role it needs and the methods it opens."""
        return cast("builtins.list[ScopeInfo]", list((yield ops.list_scopes()).get("scopes") or []))


class Credentials(Resource[M]):
    """Third-party credentials; values go in and only ever come back masked."""

    @endpoint
    def create(
        self,
        workspace: str,
        display_name: str,
        provider: str,
        value: str,
        *,
        request_id: str | None = None,
    ) -> Flow[Credential]:
        return cast(
            "Credential",
            (yield ops.create_credential(workspace, display_name, provider, value, request_id)),
        )

    @endpoint
    def get(self, name: str) -> Flow[Credential]:
        return cast("Credential", (yield ops.get_credential(name)))

    @paged
    def list(
        self, workspace: str, *, page_size: int | None = None, show_deleted: bool = False
    ) -> Pages[Credential]:
        return Pages(
            lambda t: ops.list_credentials(workspace, page_size, t, show_deleted), "credentials"
        )

    @endpoint
    def update(
        self, name: str, *, display_name: str | None = None, value: str | None = None
    ) -> Flow[Credential]:
        return cast(
            "Credential",
            (yield ops.update_credential(name, {"displayName": display_name, "value": value})),
        )

    @endpoint
    def delete(self, name: str) -> Flow[Credential]:
        return cast("Credential", (yield ops.delete_credential(name)))

    @endpoint
    def undelete(self, name: str) -> Flow[Credential]:
        return cast("Credential", (yield ops.undelete_credential(name)))


class Webhooks(Resource[M]):
    """Webhook triggers; the token is returned once, by create and rotate_token."""

    @endpoint
    def create(
        self, workspace: str, display_name: str, *, request_id: str | None = None
    ) -> Flow[CreatedWebhookTrigger]:
        return cast(
            "CreatedWebhookTrigger",
            (yield ops.create_webhook_trigger(workspace, display_name, request_id)),
        )

    @endpoint
    def get(self, name: str) -> Flow[WebhookTrigger]:
        return cast("WebhookTrigger", (yield ops.get_webhook_trigger(name)))

    @paged
    def list(
        self, workspace: str, *, page_size: int | None = None, show_deleted: bool = False
    ) -> Pages[WebhookTrigger]:
        return Pages(
            lambda t: ops.list_webhook_triggers(workspace, page_size, t, show_deleted),
            "webhookTriggers",
        )

    @endpoint
    def rotate_token(self, name: str) -> Flow[CreatedWebhookTrigger]:
        return cast("CreatedWebhookTrigger", (yield ops.rotate_webhook_token(name)))

    @endpoint
    def delete(self, name: str) -> Flow[WebhookTrigger]:
        return cast("WebhookTrigger", (yield ops.delete_webhook_trigger(name)))

    @paged
    def deliveries(self, name: str, *, page_size: int | None = None) -> Pages[WebhookDelivery]:
        return Pages(lambda t: ops.list_webhook_deliveries(name, page_size, t), "webhookDeliveries")

    @endpoint
    def deliver(self, trigger: str, token: str, payload: Json) -> Flow[DeliveryReceipt]:
        """Fire a trigger as its sender would (no login needed; the token is the credential)."""
        return cast("DeliveryReceipt", (yield ops.deliver_webhook(trigger, token, payload)))


class Deployments(Resource[M]):
    """Agent UI deployment PINs (Admin+): set, inspect, clear; ``verify_pin`` needs no login."""

    @endpoint
    def set_pin(self, workspace: str, deployment: str, pin: str) -> Flow[DeploymentPin]:
        return cast("DeploymentPin", (yield ops.set_deployment_pin(workspace, deployment, pin)))

    @endpoint
    def get_pin(self, workspace: str, deployment: str) -> Flow[DeploymentPin]:
        return cast("DeploymentPin", (yield ops.get_deployment_pin(workspace, deployment)))

    @endpoint
    def clear_pin(self, workspace: str, deployment: str) -> Flow[None]:
        yield ops.clear_deployment_pin(workspace, deployment)

    @endpoint
    def verify_pin(self, workspace: str, deployment: str, pin: str) -> Flow[DeploymentToken]:
        """A deployment token (``accessToken``) for the Agent UI when the PIN matches."""
        return cast(
            "DeploymentToken", (yield ops.verify_deployment_pin(workspace, deployment, pin))
        )


class AuditLog(Resource[M]):
    """A workspace's hash-chained audit log (Admin+, or a key with ``audit:read``); each client
    adds ``stream``, its WSS follower."""

    @paged
    def list(self, workspace: str, *, page_size: int | None = None) -> Pages[AuditEvent]:
        return Pages(lambda t: ops.list_audit_events(workspace, page_size, t), "auditEvents")

    @endpoint
    def verify(self, workspace: str) -> Flow[AuditChainReport]:
        """Recompute the chain server-side: ``ok``, ``verifiedEvents``, ``headHash`` …"""
        return cast("AuditChainReport", (yield ops.verify_audit_chain(workspace)))
