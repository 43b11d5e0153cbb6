"""Every edge route the SDK calls, as a ``Call``: the one place that knows paths and JSON names.

Paths and field names follow the contracts (protos/railguard/*/v1, rendered with the proto3 JSON
mapping: lowerCamel names, enums as strings, durations like ``"3600s"``). Both clients send these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from railguard._core import Call, child, new_request_id, page_params, resource

Json = dict[str, Any]


def _ws(workspace: str) -> str:
    return resource("workspaces", workspace)


def _mask(fields: Json) -> tuple[Json, dict[str, str]]:
    body = {k: v for k, v in fields.items() if v is not None}
    return body, {"updateMask": ",".join(body)}


# ---- auth ----------------------------------------------------------------------------------


def sign_up(email: str, password: str, display_name: str = "") -> Call:
    body: Json = {"email": email, "password": password}
    if display_name:
        body["displayName"] = display_name
    return Call("POST", "/v1/users", body=body, authenticated=False)


def login(email: str, password: str) -> Call:
    return Call(
        "POST", "/v1/auth:login", body={"email": email, "password": password}, authenticated=False
    )


def verify_mfa(challenge_token: str, totp_code: str = "", recovery_code: str = "") -> Call:
    body: Json = {"challengeToken": challenge_token}
    if totp_code:
        body["totpCode"] = totp_code
    if recovery_code:
        body["recoveryCode"] = recovery_code
    return Call("POST", "/v1/auth:verifyMfa", body=body, authenticated=False)


def refresh(refresh_token: str) -> Call:
    return Call(
        "POST", "/v1/auth:refresh", body={"refreshToken": refresh_token}, authenticated=False
    )


def logout() -> Call:
    return Call("POST", "/v1/auth:logout", body={})


def whoami() -> Call:
    return Call("GET", "/v1/whoami")


def whoami_with_key(api_key: str) -> Call:
    """``whoami`` for a key that is not the client's own credential (API-key verification)."""
    return Call("GET", "/v1/whoami", authenticated=False, headers={"X-API-Key": api_key})


def jwks() -> Call:
    return Call("GET", "/.well-known/jwks.json", authenticated=False)


# ---- the signed-in user: profile, password, sessions, MFA ----------------------------------


def get_me() -> Call:
    return Call("GET", "/v1/users/me")


def change_password(current_password: str, new_password: str) -> Call:
    body = {"currentPassword": current_password, "newPassword": new_password}
    return Call("POST", "/v1/users/me:changePassword", body=body)


def list_sessions(page_size: int | None, page_token: str) -> Call:
    return Call("GET", "/v1/users/me/sessions", params=page_params(page_size, page_token))


def revoke_session(session: str) -> Call:
    return Call("POST", f"/v1/{resource('users/me/sessions', session)}:revoke", body={})


def mfa_status() -> Call:
    return Call("GET", "/v1/users/me/mfa")


def begin_totp() -> Call:
    return Call("POST", "/v1/users/me/mfa/totp:beginEnrollment", body={})


def confirm_totp(code: str) -> Call:
    return Call("POST", "/v1/users/me/mfa/totp:confirmEnrollment", body={"code": code})


def disable_totp() -> Call:
    return Call("POST", "/v1/users/me/mfa/totp:disable", body={})


def regenerate_recovery_codes() -> Call:
    return Call("POST", "/v1/users/me/mfa/recoveryCodes:regenerate", body={})


# ---- workspaces and members ----------------------------------------------------------------


def create_workspace(
    display_name: str,
    mfa_required: bool | None,
    retention_days: int | None,
    request_id: str | None,
) -> Call:
    body: Json = {"displayName": display_name}
    if mfa_required is not None:
        body["mfaRequired"] = mfa_required
    if retention_days is not None:
        body["retentionDays"] = retention_days
    return Call("POST", "/v1/workspaces", body=body, request_id=request_id or new_request_id())


def get_workspace(workspace: str) -> Call:
    return Call("GET", f"/v1/{_ws(workspace)}")


def list_workspaces(page_size: int | None, page_token: str, show_deleted: bool = False) -> Call:
    params = page_params(page_size, page_token, showDeleted="true" if show_deleted else "")
    return Call("GET", "/v1/workspaces", params=params)


def update_workspace(workspace: str, fields: Json) -> Call:
    body, params = _mask(fields)
    return Call("PATCH", f"/v1/{_ws(workspace)}", params=params, body=body)


def delete_workspace(workspace: str) -> Call:
    return Call("DELETE", f"/v1/{_ws(workspace)}")


def undelete_workspace(workspace: str) -> Call:
    return Call("POST", f"/v1/{_ws(workspace)}:undelete", body={})


def transfer_ownership(workspace: str, new_owner: str) -> Call:
    owner = child(_ws(workspace), "members", new_owner)
    return Call("POST", f"/v1/{_ws(workspace)}:transferOwnership", body={"newOwner": owner})


def member_name(workspace: str, member: str) -> str:
    return child(_ws(workspace), "members", member)


def list_members(workspace: str, page_size: int | None, page_token: str) -> Call:
    return Call("GET", f"/v1/{_ws(workspace)}/members", params=page_params(page_size, page_token))


def add_member(workspace: str, email: str, role: str) -> Call:
    return Call("POST", f"/v1/{_ws(workspace)}/members", body={"email": email, "role": role})


def set_member_role(workspace: str, member: str, role: str) -> Call:
    return Call(
        "PATCH",
        f"/v1/{member_name(workspace, member)}",
        params={"updateMask": "role"},
        body={"role": role},
    )


def remove_member(workspace: str, member: str) -> Call:
    return Call("DELETE", f"/v1/{member_name(workspace, member)}")


# ---- audit ---------------------------------------------------------------------------------


def list_audit_events(workspace: str, page_size: int | None, page_token: str) -> Call:
    return Call(
        "GET", f"/v1/{_ws(workspace)}/auditEvents", params=page_params(page_size, page_token)
    )


def verify_audit_chain(workspace: str) -> Call:
    return Call("POST", f"/v1/{_ws(workspace)}:verifyAuditChain", body={})


def audit_stream_path(workspace: str, after: int) -> str:
    path = f"/v1/{_ws(workspace)}/auditEvents:stream"
    return f"{path}?after={after}" if after else path


# ---- API keys ------------------------------------------------------------------------------


def create_api_key(
    workspace: str,
    display_name: str,
    scopes: Sequence[str],
    environment: str,
    allowed_cidrs: Sequence[str],
    allowed_origins: Sequence[str],
    expire_time: str | None,
    request_id: str | None,
) -> Call:
    body: Json = {"displayName": display_name, "environment": environment, "scopes": list(scopes)}
    if allowed_cidrs:
        body["allowedCidrs"] = list(allowed_cidrs)
    if allowed_origins:
        body["allowedOrigins"] = list(allowed_origins)
    if expire_time:
        body["expireTime"] = expire_time
    return Call(
        "POST",
        f"/v1/{_ws(workspace)}/apiKeys",
        body=body,
        request_id=request_id or new_request_id(),
    )


def get_api_key(name: str) -> Call:
    return Call("GET", f"/v1/{name}")


def list_api_keys(
    workspace: str, page_size: int | None, page_token: str, show_deleted: bool = False
) -> Call:
    params = page_params(page_size, page_token, showDeleted="true" if show_deleted else "")
    return Call("GET", f"/v1/{_ws(workspace)}/apiKeys", params=params)


def update_api_key(name: str, fields: Json) -> Call:
    body, params = _mask(fields)
    return Call("PATCH", f"/v1/{name}", params=params, body=body)


def revoke_api_key(name: str) -> Call:
    return Call("POST", f"/v1/{name}:revoke", body={})


def rotate_api_key(name: str, grace_period_seconds: int | None) -> Call:
    body: Json = {}
    if grace_period_seconds is not None:
        body["gracePeriod"] = f"{grace_period_seconds}s"
    return Call("POST", f"/v1/{name}:rotate", body=body)


def delete_api_key(name: str) -> Call:
    return Call("DELETE", f"/v1/{name}")


def undelete_api_key(name: str) -> Call:
    return Call("POST", f"/v1/{name}:undelete", body={})


def list_scopes() -> Call:
    return Call("GET", "/v1/scopes")


# ---- credentials and webhook triggers ------------------------------------------------------


def create_credential(
    workspace: str, display_name: str, provider: str, value: str, request_id: str | None
) -> Call:
    body = {"displayName": display_name, "provider": provider, "value": value}
    return Call(
        "POST",
        f"/v1/{_ws(workspace)}/credentials",
        body=body,
        request_id=request_id or new_request_id(),
    )


def get_credential(name: str) -> Call:
    return Call("GET", f"/v1/{name}")


def list_credentials(
    workspace: str, page_size: int | None, page_token: str, show_deleted: bool = False
) -> Call:
    params = page_params(page_size, page_token, showDeleted="true" if show_deleted else "")
    return Call("GET", f"/v1/{_ws(workspace)}/credentials", params=params)


def update_credential(name: str, fields: Json) -> Call:
    body, params = _mask(fields)
    return Call("PATCH", f"/v1/{name}", params=params, body=body)


def delete_credential(name: str) -> Call:
    return Call("DELETE", f"/v1/{name}")


def undelete_credential(name: str) -> Call:
    return Call("POST", f"/v1/{name}:undelete", body={})


def create_webhook_trigger(workspace: str, display_name: str, request_id: str | None) -> Call:
    return Call(
        "POST",
        f"/v1/{_ws(workspace)}/webhookTriggers",
        body={"displayName": display_name},
        request_id=request_id or new_request_id(),
    )


def get_webhook_trigger(name: str) -> Call:
    return Call("GET", f"/v1/{name}")


def list_webhook_triggers(
    workspace: str, page_size: int | None, page_token: str, show_deleted: bool = False
) -> Call:
    params = page_params(page_size, page_token, showDeleted="true" if show_deleted else "")
    return Call("GET", f"/v1/{_ws(workspace)}/webhookTriggers", params=params)


def rotate_webhook_token(name: str) -> Call:
    return Call("POST", f"/v1/{name}:rotateToken", body={})


def delete_webhook_trigger(name: str) -> Call:
    return Call("DELETE", f"/v1/{name}")


def list_webhook_deliveries(name: str, page_size: int | None, page_token: str) -> Call:
    return Call("GET", f"/v1/{name}/deliveries", params=page_params(page_size, page_token))


def deliver_webhook(trigger_id: str, token: str, payload: Json) -> Call:
    trigger = trigger_id.rsplit("/", 1)[-1]
    return Call(
        "POST",
        f"/v1/hooks/{trigger}",
        body=payload,
        authenticated=False,
        headers={"X-Railguard-Webhook-Token": token},
    )


# ---- Agent UI deployment PINs --------------------------------------------------------------


def _pin(workspace: str, deployment: str) -> str:
    return f"{child(_ws(workspace), 'deployments', deployment)}/pin"


def set_deployment_pin(workspace: str, deployment: str, pin: str) -> Call:
    return Call("POST", f"/v1/{_pin(workspace, deployment)}:set", body={"pin": pin})


def get_deployment_pin(workspace: str, deployment: str) -> Call:
    return Call("GET", f"/v1/{_pin(workspace, deployment)}")


def clear_deployment_pin(workspace: str, deployment: str) -> Call:
    return Call("DELETE", f"/v1/{_pin(workspace, deployment)}")


def verify_deployment_pin(workspace: str, deployment: str, pin: str) -> Call:
    name = child(_ws(workspace), "deployments", deployment)
    return Call("POST", f"/v1/{name}:verifyPin", body={"pin": pin}, authenticated=False)
