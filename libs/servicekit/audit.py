"""Audit events: the pure value a use case records (what domain code may import).

A use case builds an :class:`AuditEvent` (its ``action`` is one of :class:`AuditAction`; its
metadata is checked against a denylist of secret-like key names and a size cap) and records it in
its service's outbox inside the change's transaction, so the event exists exactly when the change
does. This module imports nothing but the standard library: no gRPC, no SQLAlchemy, no service
contract (a test holds it to that). The rest of the pipeline lives in adapter modules:

- ``servicekit.outbox``: the outbox table, :class:`~servicekit.outbox.OutboxRepository` and the
  relay that drains an outbox into an :class:`AuditSink`;
- ``servicekit.audit_grpc``: the sink other services use (the workspaces service's internal
  ``AppendAuditEvents`` RPC) and the event's protobuf form;
- ``servicekit.context.origin_from_context``: who is acting in the RPC being served.

The sink is idempotent by event id, so a relay that crashes between sending and marking just
sends the batch again.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "MAX_METADATA_ENTRIES",
    "AuditAction",
    "AuditEvent",
    "AuditMetadataError",
    "AuditOrigin",
    "AuditSink",
    "Outcome",
    "canonical_json",
    "check_metadata",
    "format_time",
    "parse_time",
]

MAX_METADATA_ENTRIES = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 256
MAX_METADATA_BYTES = 2048
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_ACTION = re.compile(r"^[a-z][A-Za-z0-9_]*(\.[a-z][A-Za-z0-9_]*)+$")
# A key containing one of these words, or with one of the tokens below between underscores, is
# refused: its value is, or may be, a secret. ``key`` is refused only as the last token, so that
# ``api_key_id`` passes while ``api_key`` and ``signing_key`` do not.
_DENIED_SUBSTRINGS = ("password", "passwd", "secret", "credential", "plaintext", "ciphertext")
_DENIED_TOKENS = frozenset(
    {
        "pwd",
        "token",
        "tokens",
        "code",
        "codes",
        "pin",
        "otp",
        "totp",
        "private",
        "pepper",
        "cookie",
        "authorization",
        "bearer",
        "jwt",
        "hash",
        "salt",
        "signature",
        "apikey",
    }
)
# Values that look like Railguard secrets whatever their key: API keys, JWTs, Vault ciphertext.
_SECRET_VALUE = re.compile(r"rg_(live|test)_|eyJ[A-Za-z0-9_-]{8,}\.|vault:v\d+:")


class AuditMetadataError(ValueError):
    """An event's metadata would carry a secret-like or oversized value (a programming error)."""


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"


class AuditAction(enum.StrEnum):
    """Every action a Railguard service records: the one list (``docs/audit.md`` is checked
    against it). An :class:`AuditEvent` with any other action is refused, so a typo fails in the
    first test that records it. Adding an action: add it here, run
    ``python scripts/audit_actions.py --write`` and deploy the workspaces service (which refuses
    an action it does not know) before the service that records it.
    """

    # auth: account-level events (empty workspace_id) and deployment PINs
    USER_SIGN_UP = "user.signUp"
    USER_LOGIN = "user.login"
    USER_VERIFY_MFA = "user.verifyMfa"
    USER_LOGOUT = "user.logout"
    USER_CHANGE_PASSWORD = "user.changePassword"  # noqa: S105 - an action name
    USER_REQUEST_PASSWORD_RESET = "user.requestPasswordReset"  # noqa: S105 - an action name
    USER_RESET_PASSWORD = "user.resetPassword"  # noqa: S105 - an action name
    USER_VERIFY_EMAIL = "user.verifyEmail"
    USER_REQUEST_EMAIL_CHANGE = "user.requestEmailChange"
    USER_CHANGE_EMAIL = "user.changeEmail"
    USER_DELETE = "user.delete"
    USER_PURGE = "user.purge"
    SESSION_REVOKE = "session.revoke"
    REFRESH_TOKEN_REUSE = "refreshToken.reuse"  # noqa: S105 - an action name
    TOTP_ENROLL = "totp.enroll"
    TOTP_CONFIRM = "totp.confirm"
    TOTP_DISABLE = "totp.disable"
    RECOVERY_CODE_USE = "recoveryCode.use"
    RECOVERY_CODES_REGENERATE = "recoveryCodes.regenerate"
    SIGNING_KEY_ROTATE = "signingKey.rotate"
    DEPLOYMENT_PIN_SET = "deploymentPin.set"
    DEPLOYMENT_PIN_CLEAR = "deploymentPin.clear"
    DEPLOYMENT_PIN_VERIFY = "deploymentPin.verify"
    DEPLOYMENT_PIN_PURGE_WORKSPACE = "deploymentPin.purgeWorkspace"
    # keys
    API_KEY_CREATE = "apiKey.create"
    API_KEY_UPDATE = "apiKey.update"
    API_KEY_ROTATE = "apiKey.rotate"
    API_KEY_REVOKE = "apiKey.revoke"
    API_KEY_DELETE = "apiKey.delete"
    API_KEY_UNDELETE = "apiKey.undelete"
    API_KEY_PURGE = "apiKey.purge"
    API_KEY_VERIFY = "apiKey.verify"
    API_KEY_PURGE_WORKSPACE = "apiKey.purgeWorkspace"
    # credentials
    CREDENTIAL_CREATE = "credential.create"
    CREDENTIAL_UPDATE = "credential.update"
    CREDENTIAL_DELETE = "credential.delete"
    CREDENTIAL_UNDELETE = "credential.undelete"
    CREDENTIAL_USE = "credential.use"
    CREDENTIAL_PURGE = "credential.purge"
    CREDENTIAL_PURGE_WORKSPACE = "credential.purgeWorkspace"
    WEBHOOK_TRIGGER_CREATE = "webhookTrigger.create"
    WEBHOOK_TRIGGER_ROTATE_TOKEN = "webhookTrigger.rotateToken"  # noqa: S105 - an action name
    WEBHOOK_TRIGGER_DELETE = "webhookTrigger.delete"
    WEBHOOK_TRIGGER_DELIVER = "webhookTrigger.deliver"
    WEBHOOK_TRIGGER_PURGE = "webhookTrigger.purge"
    # workspaces
    WORKSPACE_CREATE = "workspace.create"
    WORKSPACE_UPDATE = "workspace.update"
    WORKSPACE_DELETE = "workspace.delete"
    WORKSPACE_UNDELETE = "workspace.undelete"
    WORKSPACE_TRANSFER_OWNERSHIP = "workspace.transferOwnership"
    WORKSPACE_PURGE = "workspace.purge"
    MEMBER_ADD = "member.add"
    MEMBER_UPDATE = "member.update"
    MEMBER_REMOVE = "member.remove"
    INVITATION_CREATE = "invitation.create"
    INVITATION_REVOKE = "invitation.revoke"
    INVITATION_ACCEPT = "invitation.accept"
    # never appended to a log by a use case
    WORKSPACE_LIFECYCLE = "workspace.lifecycle"
    """The envelope of a lifecycle event in a lifecycle outbox (``servicekit.lifecycle``)."""
    AUDIT_UNREADABLE = "audit.unreadable"
    """What the log shows for a stored row no event could be (it fails the chain check)."""


_ACTIONS = frozenset(a.value for a in AuditAction)


def check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Return ``metadata`` as a plain dict, or raise :class:`AuditMetadataError`."""
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise AuditMetadataError(f"at most {MAX_METADATA_ENTRIES} metadata entries")
    total = 0
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise AuditMetadataError("metadata keys and values are strings")
        if not _KEY.match(key) or len(key) > MAX_METADATA_KEY:
            raise AuditMetadataError(f"metadata key {key[:64]!r} is not snake_case")
        tokens = key.split("_")
        if (
            any(word in key for word in _DENIED_SUBSTRINGS)
            or _DENIED_TOKENS.intersection(tokens)
            or tokens[-1] == "key"
        ):
            raise AuditMetadataError(f"metadata key {key!r} may name a secret")
        if len(value) > MAX_METADATA_VALUE:
            raise AuditMetadataError(f"metadata value of {key!r} is too long")
        if _SECRET_VALUE.search(value):
            raise AuditMetadataError(f"metadata value of {key!r} looks like a secret")
        total += len(key.encode()) + len(value.encode())
    if total > MAX_METADATA_BYTES:
        raise AuditMetadataError(f"metadata is larger than {MAX_METADATA_BYTES} bytes")
    return dict(metadata)


def _utc_micro(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(dt.UTC)


def format_time(value: dt.datetime) -> str:
    """The one textual form of an event time (hashed, so it must never vary)."""
    return _utc_micro(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Who did what to which resource, when, from where, and how it ended."""

    id: str
    workspace_id: str
    actor: str
    action: str
    target: str
    outcome: Outcome
    request_id: str
    client_ip: str
    time: dt.datetime
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        uuid.UUID(self.id)
        if not _ACTION.match(self.action) or len(self.action) > 64:
            raise AuditMetadataError(f"action {self.action[:64]!r} is not noun.verb")
        if self.action not in _ACTIONS:
            raise AuditMetadataError(f"action {self.action!r} is not an AuditAction")
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        object.__setattr__(self, "time", _utc_micro(self.time))
        object.__setattr__(self, "metadata", check_metadata(self.metadata))

    @classmethod
    def new(
        cls,
        *,
        workspace_id: str,
        actor: str,
        action: str,
        target: str,
        time: dt.datetime,
        outcome: Outcome = Outcome.SUCCESS,
        request_id: str = "",
        client_ip: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> AuditEvent:
        """A new event with a fresh random id."""
        return cls(
            str(uuid.uuid4()),
            workspace_id,
            actor,
            action,
            target,
            outcome,
            request_id,
            client_ip,
            time,
            dict(metadata or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workspace_id": self.workspace_id,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome.value,
            "request_id": self.request_id,
            "client_ip": self.client_ip,
            "time": format_time(self.time),
            "metadata": dict(sorted(self.metadata.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEvent:
        return cls(
            id=str(data["id"]),
            workspace_id=str(data["workspace_id"]),
            actor=str(data["actor"]),
            action=str(data["action"]),
            target=str(data["target"]),
            outcome=Outcome(data["outcome"]),
            request_id=str(data["request_id"]),
            client_ip=str(data["client_ip"]),
            time=parse_time(str(data["time"])),
            metadata={str(k): str(v) for k, v in dict(data["metadata"]).items()},
        )

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, UTF-8."""
        return canonical_json(self.to_dict())


def canonical_json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class AuditOrigin:
    """Who is acting and from where, as known to the call being served."""

    actor: str = "system"
    request_id: str = ""
    client_ip: str = ""

    def event(
        self,
        *,
        on_behalf_of: str,
        workspace_id: str,
        action: str,
        target: str,
        time: dt.datetime,
        metadata: Mapping[str, str] | None = None,
    ) -> AuditEvent:
        """A new successful event from this origin; ``on_behalf_of`` is the actor when the
        origin names none (a use case called outside an RPC, say ``user:<id>``)."""
        return AuditEvent.new(
            workspace_id=workspace_id,
            actor=self.actor or on_behalf_of,
            action=action,
            target=target,
            time=time,
            request_id=self.request_id,
            client_ip=self.client_ip,
            metadata=metadata,
        )


class AuditSink(Protocol):
    """Where relayed events go; must be idempotent by event id."""

    async def append(self, events: Sequence[AuditEvent]) -> None: ...
