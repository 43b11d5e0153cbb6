"""Per-request context carried in contextvars: request id, mTLS caller and the principal."""

from __future__ import annotations

import contextvars
import secrets
from dataclasses import dataclass, field

from railguard.access.v1 import access_pb2

from servicekit.audit import AuditOrigin
from servicekit.errors import NotFound, PermissionDenied, Unauthenticated
from servicekit.wire import parse_name

__all__ = [
    "PRINCIPAL_METADATA_KEY",
    "REQUEST_ID_METADATA_KEY",
    "CallContext",
    "Principal",
    "current",
    "new_request_id",
    "origin_from_context",
    "scoped_name",
]

PRINCIPAL_METADATA_KEY = "railguard-principal-bin"
REQUEST_ID_METADATA_KEY = "x-request-id"


def new_request_id() -> str:
    return secrets.token_hex(12)


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as resolved by the edge. Pure data: safe to log by field."""

    user_id: str = ""
    session_id: str = ""
    aal: str = "aal1"
    amr: tuple[str, ...] = ()
    api_key_id: str = ""
    scopes: tuple[str, ...] = ()
    workspace_id: str = ""
    role: int = access_pb2.ROLE_UNSPECIFIED
    client_ip: str = ""
    auth_time: int = 0
    api_key_restricted: bool = False  # the key has CIDRs, origins or an expiry
    # From the access token's ``email_verified`` claim; an edge-side decision only (not relayed).
    email_verified: bool = False
    # The client's User-Agent (informational; shown with new sessions in the security log).
    user_agent: str = ""

    @classmethod
    def from_proto(cls, msg: access_pb2.Principal) -> Principal:
        return cls(
            user_id=msg.user_id,
            session_id=msg.session_id,
            aal=msg.aal or "aal1",
            amr=tuple(msg.amr),
            api_key_id=msg.api_key_id,
            scopes=tuple(msg.scopes),
            workspace_id=msg.workspace_id,
            role=msg.role,
            client_ip=msg.client_ip,
            auth_time=msg.auth_time,
            api_key_restricted=msg.api_key_restricted,
            user_agent=msg.user_agent,
        )

    def to_proto(self, request_id: str = "") -> access_pb2.Principal:
        return access_pb2.Principal(
            user_id=self.user_id,
            session_id=self.session_id,
            aal=self.aal,
            amr=list(self.amr),
            api_key_id=self.api_key_id,
            scopes=list(self.scopes),
            workspace_id=self.workspace_id,
            role=self.role,  # type: ignore[arg-type]
            client_ip=self.client_ip,
            auth_time=self.auth_time,
            request_id=request_id,
            api_key_restricted=self.api_key_restricted,
            user_agent=self.user_agent,
        )

    @property
    def is_api_key(self) -> bool:
        return bool(self.api_key_id)

    def require_user(self) -> str:
        """The user id; UNAUTHENTICATED when the call carries no user."""
        if not self.user_id:
            raise Unauthenticated("authentication required", reason="UNAUTHENTICATED")
        return self.user_id

    def require_workspace(self, workspace_id: str | None) -> str:
        """Check that a resource's workspace is the one the caller was authorised for.

        A mismatch answers NOT_FOUND, exactly like a missing resource, so that another
        workspace's resources cannot even be probed for existence.
        """
        if not workspace_id or not self.workspace_id:
            raise NotFound("resource not found", reason="NOT_FOUND")
        if not secrets.compare_digest(workspace_id.encode(), self.workspace_id.encode()):
            raise NotFound("resource not found", reason="NOT_FOUND")
        return workspace_id

    def require_unrestricted_key(self) -> None:
        """Refuse a restricted API key an RPC whose secret could not carry its restrictions.

        The grant rule (docs/auth.md): a PIN or a webhook token works from any address, for ever,
        so a key limited by CIDRs, origins or an expiry must not create one. Users pass.
        """
        if self.is_api_key and self.api_key_restricted:
            raise PermissionDenied(
                "a restricted API key cannot create a secret without its restrictions",
                reason="KEY_RESTRICTED",
            )

    def require_role(self, minimum: int) -> None:
        if self.role < minimum or self.role == access_pb2.ROLE_UNSPECIFIED:
            raise PermissionDenied("your role does not allow this action", reason="ROLE_TOO_LOW")


@dataclass(slots=True)
class CallContext:
    """What the runtime knows about the RPC being served."""

    request_id: str = field(default_factory=new_request_id)
    method: str = ""
    caller: str = ""
    principal: Principal = field(default_factory=Principal)


_CURRENT: contextvars.ContextVar[CallContext] = contextvars.ContextVar("railguard_call")


def current() -> CallContext:
    """The context of the RPC being served (an empty one outside a call)."""
    try:
        return _CURRENT.get()
    except LookupError:
        return CallContext()


def scoped_name(name: str, pattern: str, field: str = "name") -> dict[str, str]:
    """Parse the resource name ``name`` against ``pattern`` (INVALID_ARGUMENT on ``field`` when it
    does not match) and check that its ``{workspace}`` is the one the caller of the RPC being
    served was authorised for (NOT_FOUND otherwise, as for a missing resource); its parts."""
    parts = parse_name(pattern, name, field)
    current().principal.require_workspace(parts["workspace"])
    return parts


def origin_from_context() -> AuditOrigin:
    """The audit origin of the RPC being served: API key, else user, else the calling service."""
    call_ctx = current()
    principal = call_ctx.principal
    if principal.api_key_id:
        actor = f"apiKey:{principal.api_key_id}"
    elif principal.user_id:
        actor = f"user:{principal.user_id}"
    elif call_ctx.caller:
        actor = f"service:{call_ctx.caller}"
    else:
        actor = "system"
    return AuditOrigin(actor, call_ctx.request_id if call_ctx.method else "", principal.client_ip)


def _set(ctx: CallContext) -> contextvars.Token[CallContext]:
    return _CURRENT.set(ctx)


def _reset(token: contextvars.Token[CallContext]) -> None:
    _CURRENT.reset(token)
