"""The asyncio client: ``AsyncClient(base_url, ...)``, the same surface as ``Client`` awaited.

Authentication is an API key (``api_key=``) or a user session: ``login()`` (with the MFA step),
or ``tokens=`` from an earlier login. Access tokens are refreshed before they expire and once more
if the edge answers ``TOKEN_EXPIRED``; ``on_tokens`` is told every new pair (to store it).
"""

from __future__ import annotations

import asyncio
import builtins
import ssl
from collections.abc import AsyncIterator, Callable, Sequence
from typing import cast

import httpx

from railguard import ops
from railguard._core import (
    AuthState,
    Call,
    Exchange,
    Json,
    RetryPolicy,
    connection_failed,
    http_options,
    next_page_token,
    stream_errors,
    stream_event,
    stream_options,
    stream_url,
    tokens_from_login,
    tokens_of,
)
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

__all__ = ["AsyncClient"]


class _Transport(AuthState):
    """Sends a ``Call`` with ``httpx.AsyncClient``; the decisions are ``_core.Exchange``'s."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        retry: RetryPolicy,
        api_key: str | None,
        tokens: Tokens | None,
        on_tokens: Callable[[Tokens], None] | None,
    ) -> None:
        super().__init__(api_key, tokens, on_tokens)
        self.http, self.retry = http, retry
        self._lock = asyncio.Lock()

    async def refresh(self, stale: Tokens | None = None) -> Tokens:
        async with self._lock:
            current = self.refreshable()
            if stale is not None and current.access_token != stale.access_token:
                return current  # another task refreshed meanwhile
            tokens = tokens_of(await self.send(ops.refresh(current.refresh_token)))
            self.set_tokens(tokens)
            return tokens

    async def send(self, call: Call) -> Json:
        if (due := self.refresh_due(call)) is not None:
            await self.refresh(due)
        exchange = Exchange(call, self.retry, self)
        while True:
            try:
                response = await self.http.request(
                    call.method,
                    call.path,
                    params=call.query(),
                    json=call.body,
                    headers=exchange.headers(),
                )
            except httpx.HTTPError as exc:
                raise connection_failed(exc) from None
            step = exchange.answer(response)
            if step.body is not None:
                return step.body
            if step.refresh:
                await self.refresh(self.tokens)
            else:
                await asyncio.sleep(step.wait)

    async def pages(self, make: Callable[[str], Call], key: str) -> AsyncIterator[Json]:
        token = ""
        while True:
            page = await self.send(make(token))
            for item in page.get(key) or []:
                yield item
            if not (token := next_page_token(page)):
                return


class _Resource:
    def __init__(self, transport: _Transport) -> None:
        self._t = transport


class Users(_Resource):
    """The signed-in user."""

    async def me(self) -> User:
        return cast("User", await self._t.send(ops.get_me()))

    async def change_password(self, current_password: str, new_password: str) -> None:
        await self._t.send(ops.change_password(current_password, new_password))


class Sessions(_Resource):
    """The signed-in user's sessions (one per login)."""

    def list(self, page_size: int | None = None) -> AsyncIterator[Session]:
        return cast(
            "AsyncIterator[Session]",
            self._t.pages(lambda t: ops.list_sessions(page_size, t), "sessions"),
        )

    async def revoke(self, session: str) -> None:
        await self._t.send(ops.revoke_session(session))


class Mfa(_Resource):
    """TOTP enrollment and recovery codes of the signed-in user."""

    async def status(self) -> MfaStatus:
        return cast("MfaStatus", await self._t.send(ops.mfa_status()))

    async def begin_totp(self) -> TotpEnrollment:
        """``otpauthUri`` and ``secret`` to load into an authenticator app."""
        return cast("TotpEnrollment", await self._t.send(ops.begin_totp()))

    async def confirm_totp(self, code: str) -> TotpConfirmation:
        """Turns TOTP on; returns the recovery codes (shown once). The session becomes aal2."""
        body = await self._t.send(ops.confirm_totp(code))
        if body.get("tokens"):
            self._t.set_tokens(tokens_of(body))
        return cast("TotpConfirmation", body)

    async def disable_totp(self) -> None:
        await self._t.send(ops.disable_totp())

    async def regenerate_recovery_codes(self) -> list[str]:
        return list(
            (await self._t.send(ops.regenerate_recovery_codes())).get("recoveryCodes") or []
        )


class Workspaces(_Resource):
    """Workspaces you are a member of; you own the ones you create."""

    async def create(
        self,
        display_name: str,
        *,
        mfa_required: bool | None = None,
        retention_days: int | None = None,
        request_id: str | None = None,
    ) -> Workspace:
        return cast(
            "Workspace",
            await self._t.send(
                ops.create_workspace(display_name, mfa_required, retention_days, request_id)
            ),
        )

    async def get(self, workspace: str) -> Workspace:
        return cast("Workspace", await self._t.send(ops.get_workspace(workspace)))

    def list(
        self, *, page_size: int | None = None, show_deleted: bool = False
    ) -> AsyncIterator[Workspace]:
        return cast(
            "AsyncIterator[Workspace]",
            self._t.pages(lambda t: ops.list_workspaces(page_size, t, show_deleted), "workspaces"),
        )

    async def update(
        self,
        workspace: str,
        *,
        display_name: str | None = None,
        mfa_required: bool | None = None,
        retention_days: int | None = None,
    ) -> Workspace:
        fields = {
            "displayName": display_name,
            "mfaRequired": mfa_required,
            "retentionDays": retention_days,
        }
        return cast("Workspace", await self._t.send(ops.update_workspace(workspace, fields)))

    async def delete(self, workspace: str) -> Workspace:
        return cast("Workspace", await self._t.send(ops.delete_workspace(workspace)))

    async def undelete(self, workspace: str) -> Workspace:
        return cast("Workspace", await self._t.send(ops.undelete_workspace(workspace)))

    async def transfer_ownership(self, workspace: str, new_owner: str) -> Workspace:
        """``new_owner`` is a member's user id or member name."""
        return cast("Workspace", await self._t.send(ops.transfer_ownership(workspace, new_owner)))


class Members(_Resource):
    """Members of a workspace; ``member`` is a user id or ``workspaces/<w>/members/<user id>``."""

    def list(self, workspace: str, *, page_size: int | None = None) -> AsyncIterator[Member]:
        return cast(
            "AsyncIterator[Member]",
            self._t.pages(lambda t: ops.list_members(workspace, page_size, t), "members"),
        )

    async def add(self, workspace: str, email: str, role: str = "ROLE_USER") -> Member:
        return cast("Member", await self._t.send(ops.add_member(workspace, email, role)))

    async def set_role(self, workspace: str, member: str, role: str) -> Member:
        return cast("Member", await self._t.send(ops.set_member_role(workspace, member, role)))

    async def remove(self, workspace: str, member: str) -> None:
        await self._t.send(ops.remove_member(workspace, member))


class ApiKeys(_Resource):
    """API keys of a workspace. The secret (``key``) is returned once, by create and rotate."""

    async def create(
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
    ) -> CreatedApiKey:
        return cast(
            "CreatedApiKey",
            await self._t.send(
                ops.create_api_key(
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

    async def get(self, name: str) -> ApiKey:
        return cast("ApiKey", await self._t.send(ops.get_api_key(name)))

    def list(
        self, workspace: str, *, page_size: int | None = None, show_deleted: bool = False
    ) -> AsyncIterator[ApiKey]:
        return cast(
            "AsyncIterator[ApiKey]",
            self._t.pages(
                lambda t: ops.list_api_keys(workspace, page_size, t, show_deleted), "apiKeys"
            ),
        )

    async def update(
        self,
        name: str,
        *,
        display_name: str | None = None,
        scopes: Sequence[str] | None = None,
        allowed_cidrs: Sequence[str] | None = None,
        allowed_origins: Sequence[str] | None = None,
        expire_time: str | None = None,
    ) -> ApiKey:
        fields = {
            "displayName": display_name,
            "scopes": None if scopes is None else list(scopes),
            "allowedCidrs": None if allowed_cidrs is None else list(allowed_cidrs),
            "allowedOrigins": None if allowed_origins is None else list(allowed_origins),
            "expireTime": expire_time,
        }
        return cast("ApiKey", await self._t.send(ops.update_api_key(name, fields)))

    async def rotate(self, name: str, *, grace_period_seconds: int | None = None) -> CreatedApiKey:
        return cast(
            "CreatedApiKey", await self._t.send(ops.rotate_api_key(name, grace_period_seconds))
        )

    async def revoke(self, name: str) -> ApiKey:
        return cast("ApiKey", await self._t.send(ops.revoke_api_key(name)))

    async def delete(self, name: str) -> ApiKey:
        return cast("ApiKey", await self._t.send(ops.delete_api_key(name)))

    async def undelete(self, name: str) -> ApiKey:
        return cast("ApiKey", await self._t.send(ops.undelete_api_key(name)))

    async def scopes(self) -> builtins.list[ScopeInfo]:
        """The scope catalogue: every scope, the role it needs and the methods it opens."""
        return cast(
            "builtins.list[ScopeInfo]",
            list((await self._t.send(ops.list_scopes())).get("scopes") or []),
        )


class Credentials(_Resource):
    """Third-party credentials; values go in and only ever come back masked."""

    async def create(
        self,
        workspace: str,
        display_name: str,
        provider: str,
        value: str,
        *,
        request_id: str | None = None,
    ) -> Credential:
        return cast(
            "Credential",
            await self._t.send(
                ops.create_credential(workspace, display_name, provider, value, request_id)
            ),
        )

    async def get(self, name: str) -> Credential:
        return cast("Credential", await self._t.send(ops.get_credential(name)))

    def list(
        self, workspace: str, *, page_size: int | None = None, show_deleted: bool = False
    ) -> AsyncIterator[Credential]:
        return cast(
            "AsyncIterator[Credential]",
            self._t.pages(
                lambda t: ops.list_credentials(workspace, page_size, t, show_deleted), "credentials"
            ),
        )

    async def update(
        self, name: str, *, display_name: str | None = None, value: str | None = None
    ) -> Credential:
        return cast(
            "Credential",
            await self._t.send(
                ops.update_credential(name, {"displayName": display_name, "value": value})
            ),
        )

    async def delete(self, name: str) -> Credential:
        return cast("Credential", await self._t.send(ops.delete_credential(name)))

    async def undelete(self, name: str) -> Credential:
        return cast("Credential", await self._t.send(ops.undelete_credential(name)))


class Webhooks(_Resource):
    """Webhook triggers; the token is returned once, by create and rotate_token."""

    async def create(
        self, workspace: str, display_name: str, *, request_id: str | None = None
    ) -> CreatedWebhookTrigger:
        return cast(
            "CreatedWebhookTrigger",
            await self._t.send(ops.create_webhook_trigger(workspace, display_name, request_id)),
        )

    async def get(self, name: str) -> WebhookTrigger:
        return cast("WebhookTrigger", await self._t.send(ops.get_webhook_trigger(name)))

    def list(
        self, workspace: str, *, page_size: int | None = None, show_deleted: bool = False
    ) -> AsyncIterator[WebhookTrigger]:
        return cast(
            "AsyncIterator[WebhookTrigger]",
            self._t.pages(
                lambda t: ops.list_webhook_triggers(workspace, page_size, t, show_deleted),
                "webhookTriggers",
            ),
        )

    async def rotate_token(self, name: str) -> CreatedWebhookTrigger:
        return cast("CreatedWebhookTrigger", await self._t.send(ops.rotate_webhook_token(name)))

    async def delete(self, name: str) -> WebhookTrigger:
        return cast("WebhookTrigger", await self._t.send(ops.delete_webhook_trigger(name)))

    def deliveries(
        self, name: str, *, page_size: int | None = None
    ) -> AsyncIterator[WebhookDelivery]:
        return cast(
            "AsyncIterator[WebhookDelivery]",
            self._t.pages(
                lambda t: ops.list_webhook_deliveries(name, page_size, t), "webhookDeliveries"
            ),
        )

    async def deliver(self, trigger: str, token: str, payload: Json) -> DeliveryReceipt:
        """Fire a trigger as its sender would (no login needed; the token is the credential)."""
        return cast(
            "DeliveryReceipt", await self._t.send(ops.deliver_webhook(trigger, token, payload))
        )


class Deployments(_Resource):
    """Agent UI deployment PINs (Admin+): set, inspect, clear; ``verify_pin`` needs no login."""

    async def set_pin(self, workspace: str, deployment: str, pin: str) -> DeploymentPin:
        return cast(
            "DeploymentPin", await self._t.send(ops.set_deployment_pin(workspace, deployment, pin))
        )

    async def get_pin(self, workspace: str, deployment: str) -> DeploymentPin:
        return cast(
            "DeploymentPin", await self._t.send(ops.get_deployment_pin(workspace, deployment))
        )

    async def clear_pin(self, workspace: str, deployment: str) -> None:
        await self._t.send(ops.clear_deployment_pin(workspace, deployment))

    async def verify_pin(self, workspace: str, deployment: str, pin: str) -> DeploymentToken:
        """A deployment token (``accessToken``) for the Agent UI when the PIN matches."""
        return cast(
            "DeploymentToken",
            await self._t.send(ops.verify_deployment_pin(workspace, deployment, pin)),
        )


class Audit(_Resource):
    """A workspace's hash-chained audit log (Admin+, or a key with ``audit:read``)."""

    def __init__(self, transport: _Transport, base_url: str, verify: bool | str | ssl.SSLContext):
        super().__init__(transport)
        self._base_url, self._verify = base_url, verify

    def list(self, workspace: str, *, page_size: int | None = None) -> AsyncIterator[AuditEvent]:
        return cast(
            "AsyncIterator[AuditEvent]",
            self._t.pages(lambda t: ops.list_audit_events(workspace, page_size, t), "auditEvents"),
        )

    async def verify(self, workspace: str) -> AuditChainReport:
        """Recompute the chain server-side: ``ok``, ``verifiedEvents``, ``headHash`` …"""
        return cast("AuditChainReport", await self._t.send(ops.verify_audit_chain(workspace)))

    async def stream(
        self, workspace: str, *, after: int = 0, open_timeout: float = 10
    ) -> AsyncIterator[AuditEvent]:
        """Every event after sequence ``after``, then each new one as it is appended (WSS)."""
        from websockets.asyncio.client import connect

        if (due := self._t.refresh_due()) is not None:
            await self._t.refresh(due)
        url = stream_url(self._base_url, ops.audit_stream_path(workspace, after))
        with stream_errors():
            async with connect(
                url, **stream_options(self._t, self._verify, open_timeout)
            ) as socket:
                async for message in socket:
                    if (event := stream_event(message)) is not None:
                        yield cast(AuditEvent, event)


class AsyncClient:
    """An asyncio Railguard client. Use as ``async with``, or ``await aclose()``."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        tokens: Tokens | None = None,
        verify: bool | str | ssl.SSLContext = True,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        on_tokens: Callable[[Tokens], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(**http_options(self.base_url, verify, timeout))
        t = _Transport(self._http, retry or RetryPolicy(), api_key, tokens, on_tokens)
        self._t = t
        self.users, self.sessions, self.mfa = Users(t), Sessions(t), Mfa(t)
        self.workspaces, self.members = Workspaces(t), Members(t)
        self.api_keys, self.credentials, self.webhooks = ApiKeys(t), Credentials(t), Webhooks(t)
        self.audit = Audit(t, self.base_url, verify)
        self.deployments = Deployments(t)

    @property
    def tokens(self) -> Tokens | None:
        return self._t.tokens

    async def sign_up(self, email: str, password: str, display_name: str = "") -> User:
        return cast("User", await self._t.send(ops.sign_up(email, password, display_name)))

    async def login(
        self, email: str, password: str, *, totp_code: str = "", recovery_code: str = ""
    ) -> Tokens:
        """Sign in. With MFA on, pass a code here, or catch ``MfaRequired`` and ``verify_mfa``."""
        body = await self._t.send(ops.login(email, password))
        try:
            tokens = tokens_from_login(body)
        except MfaRequired as challenge:
            if not (totp_code or recovery_code):
                raise
            return await self.verify_mfa(
                challenge.challenge_token, totp_code=totp_code, recovery_code=recovery_code
            )
        self._t.set_tokens(tokens)
        return tokens

    async def verify_mfa(
        self, challenge_token: str, *, totp_code: str = "", recovery_code: str = ""
    ) -> Tokens:
        body = await self._t.send(ops.verify_mfa(challenge_token, totp_code, recovery_code))
        tokens = tokens_of(body)
        self._t.set_tokens(tokens)
        return tokens

    async def refresh(self) -> Tokens:
        """Renew the access token now (it also happens by itself before expiry)."""
        return await self._t.refresh()

    async def logout(self) -> None:
        """End this session server-side; its refresh token stops working."""
        await self._t.send(ops.logout())
        self._t.tokens = None

    async def whoami(self) -> WhoAmI:
        """The caller: a user (``userId``, ``aal``) or an API key (``workspace``, ``scopes``)."""
        return cast("WhoAmI", await self._t.send(ops.whoami()))

    async def jwks(self) -> Json:
        return await self._t.send(ops.jwks())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
