"""CredentialsService over gRPC: proto ↔ primitives around one use case per RPC."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from google.protobuf import json_format
from railguard.credentials.v1 import credentials_service_pb2 as pb
from railguard.credentials.v1 import credentials_service_pb2_grpc
from servicekit.context import current, scoped_name
from servicekit.lifecycle import LifecycleApplier, LifecycleReceiver
from servicekit.wire import mask_paths, timestamp

from credentials_service.domain import Credential, Delivery, SoftDeletable, WebhookTrigger
from credentials_service.usecases import (
    UPDATABLE_FIELDS,
    Actor,
    CredentialUseCases,
    DeliveryUseCases,
    WebhookTriggerUseCases,
)
from credentials_service.usecases.lifecycle import LifecycleUseCases

WS = "workspaces/{workspace}"
CREDENTIAL = "workspaces/{workspace}/credentials/{credential}"
TRIGGER = "workspaces/{workspace}/webhookTriggers/{trigger}"
HOOK_PATH = "/v1/hooks/{trigger}"

R = TypeVar("R", bound=SoftDeletable)
M = TypeVar("M")
_ListRequest = pb.ListCredentialsRequest | pb.ListWebhookTriggersRequest


def _state(deleted: bool) -> pb.State.ValueType:
    return pb.STATE_DELETED if deleted else pb.STATE_ACTIVE


def _credential(c: Credential) -> pb.Credential:
    return pb.Credential(
        name=f"workspaces/{c.workspace_id}/credentials/{c.id}",
        display_name=c.display_name,
        provider=c.provider,
        masked_value=c.masked_value,
        key_version=c.key_version,
        state=_state(c.deleted),
        create_time=timestamp(c.created_at),
        create_by=c.created_by,
        update_time=timestamp(c.updated_at),
        updated_by=c.updated_by,
        last_used_time=timestamp(c.last_used_at),
        delete_time=timestamp(c.deleted_at),
        purge_time=timestamp(c.purge_at),
    )


def _trigger(t: WebhookTrigger) -> pb.WebhookTrigger:
    return pb.WebhookTrigger(
        name=f"workspaces/{t.workspace_id}/webhookTriggers/{t.id}",
        display_name=t.display_name,
        url_path=HOOK_PATH.format(trigger=t.id),
        state=_state(t.deleted),
        create_time=timestamp(t.created_at),
        create_by=t.created_by,
        token_issue_time=timestamp(t.token_issued_at),
        last_delivery_time=timestamp(t.last_delivery_at),
        delete_time=timestamp(t.deleted_at),
    )


def _delivery(d: Delivery) -> pb.WebhookDelivery:
    return pb.WebhookDelivery(
        name=f"workspaces/{d.workspace_id}/webhookTriggers/{d.trigger_id}/deliveries/{d.id}",
        receive_time=timestamp(d.received_at),
        size_bytes=d.size_bytes,
        content_type=d.content_type,
        source_ip=d.source_ip,
    )


def _scoped(name: str, pattern: str, field: str = "name") -> tuple[Actor, dict[str, str]]:
    """Parse a resource name and check it lies in the workspace the caller was authorised for."""
    parts = scoped_name(name, pattern, field)
    return Actor(current().principal.user_id, parts["workspace"]), parts


def _in_workspace(parent: str) -> Actor:
    """The actor of a call on a collection of the workspace named by ``parent``."""
    actor, _ = _scoped(parent, WS, "parent")
    return actor


@dataclass(frozen=True, slots=True)
class _Served(Generic[R, M]):
    """One soft-deletable kind on the wire: its resource name and message, and the RPCs every
    kind serves alike (get, list, delete) over its use cases."""

    pattern: str
    """The resource name, such as ``CREDENTIAL``."""
    key: str
    """The placeholder of the item's id in ``pattern``."""
    use_cases: LifecycleUseCases[R]
    message: Callable[[R], M]

    def scoped(self, name: str, field: str = "name") -> tuple[Actor, str]:
        """The actor and the item id of a call naming one item (see :func:`_scoped`)."""
        actor, parts = _scoped(name, self.pattern, field)
        return actor, parts[self.key]

    async def get(self, name: str) -> M:
        return self.message(await self.use_cases.get(*self.scoped(name)))

    async def delete(self, name: str) -> M:
        return self.message(await self.use_cases.delete(*self.scoped(name)))

    async def page(self, request: _ListRequest) -> tuple[list[M], str]:
        """One page of the collection under ``request.parent``, as messages, and the next token."""
        rows, token = await self.use_cases.list(
            _in_workspace(request.parent),
            request.page_size,
            request.page_token,
            request.show_deleted,
        )
        return [self.message(item) for item in rows], token


class CredentialsServicer(
    LifecycleReceiver, credentials_service_pb2_grpc.CredentialsServiceServicer
):
    lifecycle_response = pb.ApplyWorkspaceLifecycleResponse

    def __init__(
        self,
        credentials: CredentialUseCases,
        triggers: WebhookTriggerUseCases,
        deliveries: DeliveryUseCases,
        lifecycle: LifecycleApplier,
    ) -> None:
        self.credentials, self.triggers, self.deliveries = credentials, triggers, deliveries
        self.lifecycle = lifecycle
        self._credential = _Served(CREDENTIAL, "credential", credentials, _credential)
        self._trigger = _Served(TRIGGER, "trigger", triggers, _trigger)

    async def CreateCredential(
        self, request: pb.CreateCredentialRequest, context: object
    ) -> pb.Credential:
        actor, c = _in_workspace(request.parent), request.credential
        return _credential(
            await self.credentials.create(
                actor, c.display_name, c.provider, c.value, request.request_id
            )
        )

    async def GetCredential(
        self, request: pb.GetCredentialRequest, context: object
    ) -> pb.Credential:
        return await self._credential.get(request.name)

    async def ListCredentials(
        self, request: pb.ListCredentialsRequest, context: object
    ) -> pb.ListCredentialsResponse:
        credentials, token = await self._credential.page(request)
        return pb.ListCredentialsResponse(credentials=credentials, next_page_token=token)

    async def UpdateCredential(
        self, request: pb.UpdateCredentialRequest, context: object
    ) -> pb.Credential:
        actor, credential_id = self._credential.scoped(request.credential.name, "credential.name")
        paths = mask_paths(request.update_mask, UPDATABLE_FIELDS)
        changes = {path: getattr(request.credential, path) for path in paths}
        return _credential(await self.credentials.update(actor, credential_id, changes))

    async def DeleteCredential(
        self, request: pb.DeleteCredentialRequest, context: object
    ) -> pb.Credential:
        return await self._credential.delete(request.name)

    async def UndeleteCredential(
        self, request: pb.UndeleteCredentialRequest, context: object
    ) -> pb.Credential:
        return _credential(await self.credentials.undelete(*self._credential.scoped(request.name)))

    async def UseCredential(
        self, request: pb.UseCredentialRequest, context: object
    ) -> pb.UseCredentialResponse:
        actor, credential_id = self._credential.scoped(request.name)
        credential, value = await self.credentials.use(
            actor, current().caller, credential_id, request.purpose
        )
        return pb.UseCredentialResponse(
            name=request.name,
            provider=credential.provider,
            value=value.reveal(),
            key_version=credential.key_version,
        )

    async def CreateWebhookTrigger(
        self, request: pb.CreateWebhookTriggerRequest, context: object
    ) -> pb.CreateWebhookTriggerResponse:
        actor = _in_workspace(request.parent)
        current().principal.require_unrestricted_key()  # a webhook token works from anywhere
        trigger, token = await self.triggers.create(
            actor, request.webhook_trigger.display_name, request.request_id
        )
        return pb.CreateWebhookTriggerResponse(
            webhook_trigger=_trigger(trigger), token=token.reveal() if token else ""
        )

    async def GetWebhookTrigger(
        self, request: pb.GetWebhookTriggerRequest, context: object
    ) -> pb.WebhookTrigger:
        return await self._trigger.get(request.name)

    async def ListWebhookTriggers(
        self, request: pb.ListWebhookTriggersRequest, context: object
    ) -> pb.ListWebhookTriggersResponse:
        triggers, token = await self._trigger.page(request)
        return pb.ListWebhookTriggersResponse(webhook_triggers=triggers, next_page_token=token)

    async def RotateWebhookTriggerToken(
        self, request: pb.RotateWebhookTriggerTokenRequest, context: object
    ) -> pb.RotateWebhookTriggerTokenResponse:
        actor, trigger_id = self._trigger.scoped(request.name)
        current().principal.require_unrestricted_key()  # a webhook token works from anywhere
        trigger, token = await self.triggers.rotate_token(actor, trigger_id)
        return pb.RotateWebhookTriggerTokenResponse(
            webhook_trigger=_trigger(trigger), token=token.reveal()
        )

    async def DeleteWebhookTrigger(
        self, request: pb.DeleteWebhookTriggerRequest, context: object
    ) -> pb.WebhookTrigger:
        return await self._trigger.delete(request.name)

    async def DeliverWebhook(
        self, request: pb.DeliverWebhookRequest, context: object
    ) -> pb.DeliverWebhookResponse:
        size = request.size_bytes or len(
            json.dumps(json_format.MessageToDict(request.payload), separators=(",", ":")).encode()
        )
        delivery = await self.deliveries.deliver(
            request.trigger_id,
            request.token,
            size,
            request.content_type or "application/json",
            current().principal.client_ip,
        )
        return pb.DeliverWebhookResponse(delivery_id=delivery.id)

    async def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: object
    ) -> pb.ListWebhookDeliveriesResponse:
        actor, parts = _scoped(request.parent, TRIGGER, "parent")
        rows, token = await self.deliveries.list(
            actor, parts["trigger"], request.page_size, request.page_token
        )
        return pb.ListWebhookDeliveriesResponse(
            webhook_deliveries=[_delivery(d) for d in rows], next_page_token=token
        )
