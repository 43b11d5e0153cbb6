"""KeysService over gRPC: proto ↔ primitives around one use case per RPC."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from railguard.keys.v1 import keys_service_pb2 as pb
from railguard.keys.v1 import keys_service_pb2_grpc
from servicekit.context import current, scoped_name
from servicekit.lifecycle import LifecycleApplier, LifecycleReceiver
from servicekit.wire import mask_paths, timestamp, to_datetime

from keys_service.domain import KeyEnvironment, KeyState, Role, Verified
from keys_service.usecases import UPDATABLE_FIELDS, Actor, AllowedOrigins, KeysService, KeyView

WS = "workspaces/{workspace}"
KEY = "workspaces/{workspace}/apiKeys/{api_key}"

_ENVIRONMENTS = {
    KeyEnvironment.LIVE: pb.ENVIRONMENT_LIVE,
    KeyEnvironment.TEST: pb.ENVIRONMENT_TEST,
}
_ENVIRONMENT_NAMES = {int(v): k.value for k, v in _ENVIRONMENTS.items()}
_STATES = {
    KeyState.ACTIVE: pb.API_KEY_STATE_ACTIVE,
    KeyState.REVOKED: pb.API_KEY_STATE_REVOKED,
    KeyState.EXPIRED: pb.API_KEY_STATE_EXPIRED,
    KeyState.DELETED: pb.API_KEY_STATE_DELETED,
}


def _api_key(view: KeyView) -> pb.ApiKey:
    key = view.key
    rotation = None
    if key.rotated_at is not None:
        rotation = pb.Rotation(
            rotate_time=timestamp(key.rotated_at),
            previous_secret_expire_time=timestamp(key.previous_expires_at),
        )
    return pb.ApiKey(
        name=f"workspaces/{key.workspace_id}/apiKeys/{key.id}",
        display_name=key.name,
        environment=_ENVIRONMENTS[key.environment],
        prefix=key.display_prefix,
        scopes=key.scopes.as_strings(),
        allowed_cidrs=key.allowed_cidrs.as_strings(),
        allowed_origins=key.allowed_origins.as_strings(),
        expire_time=timestamp(key.expires_at),
        state=_STATES[view.state],
        create_time=timestamp(key.created_at),
        created_by=key.created_by,
        update_time=timestamp(key.updated_at),
        revoke_time=timestamp(key.revoked_at),
        last_used_time=timestamp(key.last_used_at),
        rotation=rotation,
        delete_time=timestamp(key.deleted_at),
    )


def _verified(result: Verified) -> pb.VerifyApiKeyResponse:
    key = result.key
    return pb.VerifyApiKeyResponse(
        name=f"workspaces/{key.workspace_id}/apiKeys/{key.id}",
        key_id=key.id,
        workspace_id=key.workspace_id,
        created_by=key.created_by,
        scopes=key.scopes.as_strings(),
        environment=_ENVIRONMENTS[key.environment],
        expire_time=timestamp(key.expires_at),
        secret_expire_time=timestamp(result.secret_expires_at),
        allowed_origins=key.allowed_origins.as_strings(),
        previous_secret=result.slot.value == "previous",
        aal=key.creator_aal,
        allowed_cidrs=key.allowed_cidrs.as_strings(),
    )


def _actor() -> Actor:
    principal = current().principal
    role = Role(principal.role) if principal.role in Role._value2member_map_ else Role.NONE
    scopes = tuple(principal.scopes) if principal.is_api_key else None
    return Actor(
        principal.require_user(), role, scopes, key_id=principal.api_key_id, aal=principal.aal
    )


class KeysServicer(LifecycleReceiver, keys_service_pb2_grpc.KeysServiceServicer):
    lifecycle_response = pb.ApplyWorkspaceLifecycleResponse

    def __init__(
        self,
        service: KeysService,
        lifecycle: LifecycleApplier,
        origins: AllowedOrigins | None = None,
    ) -> None:
        self.service, self.lifecycle, self.origins = service, lifecycle, origins

    @staticmethod
    async def _on_key(
        name: str, step: Callable[[Actor, str, str], Awaitable[KeyView]]
    ) -> pb.ApiKey:
        """``step`` (get, revoke, delete, undelete) on the key ``name`` names, as the caller."""
        parts = scoped_name(name, KEY)
        return _api_key(await step(_actor(), parts["workspace"], parts["api_key"]))

    async def CreateApiKey(
        self, request: pb.CreateApiKeyRequest, context: object
    ) -> pb.CreateApiKeyResponse:
        ws_id = scoped_name(request.parent, WS, "parent")["workspace"]
        k = request.api_key
        view = await self.service.create(
            _actor(),
            ws_id,
            name=k.display_name,
            environment=_ENVIRONMENT_NAMES.get(k.environment, ""),
            scopes=list(k.scopes),
            allowed_cidrs=list(k.allowed_cidrs),
            allowed_origins=list(k.allowed_origins),
            expires_at=to_datetime(k.expire_time) if k.HasField("expire_time") else None,
            request_id=request.request_id,
        )
        return pb.CreateApiKeyResponse(api_key=_api_key(view), key=view.secret or "")

    async def GetApiKey(self, request: pb.GetApiKeyRequest, context: object) -> pb.ApiKey:
        return await self._on_key(request.name, self.service.get)

    async def ListApiKeys(
        self, request: pb.ListApiKeysRequest, context: object
    ) -> pb.ListApiKeysResponse:
        ws_id = scoped_name(request.parent, WS, "parent")["workspace"]
        views, token = await self.service.list(
            _actor(), ws_id, request.page_size, request.page_token, request.show_deleted
        )
        return pb.ListApiKeysResponse(api_keys=[_api_key(v) for v in views], next_page_token=token)

    async def UpdateApiKey(self, request: pb.UpdateApiKeyRequest, context: object) -> pb.ApiKey:
        parts = scoped_name(request.api_key.name, KEY, "api_key.name")
        paths = mask_paths(request.update_mask, UPDATABLE_FIELDS)
        k = request.api_key
        values: dict[str, object] = {
            "display_name": k.display_name,
            "scopes": list(k.scopes),
            "allowed_cidrs": list(k.allowed_cidrs),
            "allowed_origins": list(k.allowed_origins),
            "expire_time": to_datetime(k.expire_time) if k.HasField("expire_time") else None,
        }
        changes = {path: values[path] for path in paths}
        view = await self.service.update(_actor(), parts["workspace"], parts["api_key"], changes)
        return _api_key(view)

    async def RevokeApiKey(self, request: pb.RevokeApiKeyRequest, context: object) -> pb.ApiKey:
        return await self._on_key(request.name, self.service.revoke)

    async def RotateApiKey(
        self, request: pb.RotateApiKeyRequest, context: object
    ) -> pb.RotateApiKeyResponse:
        parts = scoped_name(request.name, KEY)
        view = await self.service.rotate(
            _actor(), parts["workspace"], parts["api_key"], request.grace_period.ToTimedelta()
        )
        return pb.RotateApiKeyResponse(api_key=_api_key(view), key=view.secret or "")

    async def DeleteApiKey(self, request: pb.DeleteApiKeyRequest, context: object) -> pb.ApiKey:
        return await self._on_key(request.name, self.service.delete)

    async def UndeleteApiKey(self, request: pb.UndeleteApiKeyRequest, context: object) -> pb.ApiKey:
        return await self._on_key(request.name, self.service.undelete)

    async def ListScopes(
        self, request: pb.ListScopesRequest, context: object
    ) -> pb.ListScopesResponse:
        return pb.ListScopesResponse(
            scopes=[
                pb.ScopeInfo(
                    scope=str(rule.scope),
                    min_role=int(rule.min_role),  # type: ignore[arg-type]
                    methods=list(rule.methods),
                    implies=[str(s) for s in rule.implies],
                )
                for rule in self.service.list_scopes()
            ]
        )

    async def VerifyApiKey(
        self, request: pb.VerifyApiKeyRequest, context: object
    ) -> pb.VerifyApiKeyResponse:
        result = await self.service.verify(
            request.key,
            request.client_ip,
            request.origin,
            request.required_scope,
            introspect=request.introspect,
        )
        return _verified(result)

    async def ListAllowedOrigins(
        self, request: pb.ListAllowedOriginsRequest, context: object
    ) -> pb.ListAllowedOriginsResponse:
        if self.origins is None:
            return pb.ListAllowedOriginsResponse()  # no keys here: no origin is allowed
        version, origins = await self.origins.current()
        if request.known_version == version:
            return pb.ListAllowedOriginsResponse(version=version, unchanged=True)
        return pb.ListAllowedOriginsResponse(version=version, origins=origins)
