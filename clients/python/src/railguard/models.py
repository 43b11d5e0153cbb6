"""The shapes of the edge's answers, as ``TypedDict``s (``total=False``: the proto3 JSON mapping
omits fields at their default). Keys are the JSON names; enums are strings (``ROLE_ADMIN``);
timestamps are RFC 3339 strings; int64 values (``sequence``, ``sizeBytes``) are strings."""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = [
    "ApiKey",
    "AuditChainReport",
    "AuditEvent",
    "CreatedApiKey",
    "CreatedWebhookTrigger",
    "Credential",
    "DeliveryReceipt",
    "DeploymentPin",
    "DeploymentToken",
    "Member",
    "MfaStatus",
    "ScopeInfo",
    "Session",
    "TotpConfirmation",
    "TotpEnrollment",
    "User",
    "WebhookDelivery",
    "WebhookTrigger",
    "WhoAmI",
    "Workspace",
]


class User(TypedDict, total=False):
    name: str
    id: str
    email: str
    displayName: str
    createTime: str


class Session(TypedDict, total=False):
    name: str
    current: bool
    createTime: str
    lastUseTime: str
    expireTime: str
    clientIp: str
    aal: str


class MfaStatus(TypedDict, total=False):
    totpEnabled: bool
    totpPending: bool
    totpEnableTime: str
    recoveryCodesRemaining: int


class TotpEnrollment(TypedDict, total=False):
    otpauthUri: str
    secret: str
    digits: int
    period: int
    algorithm: str


class TotpConfirmation(TypedDict, total=False):
    recoveryCodes: list[str]
    tokens: dict[str, Any]


class Workspace(TypedDict, total=False):
    name: str
    displayName: str
    plan: str
    mfaRequired: bool
    retentionDays: int
    state: str
    createTime: str
    updateTime: str
    deleteTime: str
    purgeTime: str
    callerRole: str


class Member(TypedDict, total=False):
    name: str
    email: str
    role: str
    createTime: str


class ApiKey(TypedDict, total=False):
    name: str
    displayName: str
    environment: str
    prefix: str
    scopes: list[str]
    allowedCidrs: list[str]
    allowedOrigins: list[str]
    expireTime: str
    state: str
    createTime: str
    createdBy: str
    updateTime: str
    revokeTime: str
    lastUsedTime: str
    rotation: dict[str, str]
    deleteTime: str


class CreatedApiKey(TypedDict, total=False):
    apiKey: ApiKey
    key: str  # the secret, returned once


class ScopeInfo(TypedDict, total=False):
    scope: str
    minRole: str
    methods: list[str]
    implies: list[str]


class Credential(TypedDict, total=False):
    name: str
    displayName: str
    provider: str
    maskedValue: str
    keyVersion: int
    state: str
    createTime: str
    createBy: str
    updateTime: str
    updatedBy: str
    lastUsedTime: str
    deleteTime: str
    purgeTime: str


class WebhookTrigger(TypedDict, total=False):
    name: str
    displayName: str
    urlPath: str
    state: str
    createTime: str
    createBy: str
    tokenIssueTime: str
    lastDeliveryTime: str
    deleteTime: str


class CreatedWebhookTrigger(TypedDict, total=False):
    webhookTrigger: WebhookTrigger
    token: str  # returned once


class WebhookDelivery(TypedDict, total=False):
    name: str
    receiveTime: str
    sizeBytes: str
    contentType: str
    sourceIp: str


class DeliveryReceipt(TypedDict, total=False):
    deliveryId: str


class AuditEvent(TypedDict, total=False):
    name: str
    id: str
    workspaceId: str
    actor: str
    action: str
    target: str
    outcome: str
    requestId: str
    clientIp: str
    eventTime: str
    metadata: dict[str, str]
    sequence: str
    source: str
    prevHash: str
    hash: str


class AuditChainReport(TypedDict, total=False):
    ok: bool
    verifiedEvents: str
    firstBrokenSequence: str
    headSequence: str
    headHash: str


class DeploymentPin(TypedDict, total=False):
    name: str
    updateTime: str


class DeploymentToken(TypedDict, total=False):
    accessToken: str
    tokenType: str
    expiresIn: int


class WhoAmI(TypedDict, total=False):
    type: str  # "user" or "apiKey"
    userId: str
    sessionId: str
    aal: str
    amr: list[str]
    apiKeyId: str
    workspace: str
    createdBy: str
    scopes: list[str]
    clientIp: str
    rateLimits: list[dict[str, Any]]
