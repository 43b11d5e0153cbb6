"""The contract: plaintext has one way out (UseCredential), and no HTTP route reaches it."""

from __future__ import annotations

from edge_service.app import contract_modules
from edge_service.routes import RouteTable
from google.api import field_behavior_pb2
from railguard.access.v1 import access_pb2
from railguard.credentials.v1 import credentials_service_pb2 as pb
from servicekit.access import describe_services

SERVICE = "/railguard.credentials.v1.CredentialsService/"


def test_use_credential_is_internal_and_unrouted() -> None:
    infos = {i.full_method: i for i in describe_services([pb])}
    use = infos[SERVICE + "UseCredential"]
    assert use.rule is not None and list(use.rule.internal_callers) == ["runtime"]
    assert use.http == ()
    table = RouteTable(describe_services(contract_modules()))
    routed = {route.info.full_method for route in table.routes}
    assert SERVICE + "UseCredential" not in routed
    assert SERVICE + "CreateCredential" in routed
    for verb in ("GET", "POST", "PATCH", "PUT", "DELETE"):
        for path in (
            "/v1/workspaces/w/credentials/c",
            "/v1/workspaces/w/credentials/c:use",
            "/v1/workspaces/w/credentials/c:useCredential",
        ):
            route, _ = table.resolve(verb, path)
            assert route is None or route.info.full_method != SERVICE + "UseCredential"


def test_the_webhook_route_is_public_and_rate_limited() -> None:
    table = RouteTable(describe_services(contract_modules()))
    route, _ = table.resolve("POST", "/v1/hooks/abc123")
    assert route is not None and route.info.full_method == SERVICE + "DeliverWebhook"
    rule = route.info.rule
    assert rule is not None and rule.public and not rule.scope
    assert rule.rate_limit == access_pb2.RATE_LIMIT_CLASS_WEBHOOK


def test_secret_fields_are_input_only_and_no_other_response_has_a_value() -> None:
    value = pb.Credential.DESCRIPTOR.fields_by_name["value"]
    behaviors = value.GetOptions().Extensions[field_behavior_pb2.field_behavior]
    assert field_behavior_pb2.INPUT_ONLY in behaviors
    carriers = {
        message.name
        for message in pb.DESCRIPTOR.message_types_by_name.values()
        if "value" in message.fields_by_name or "token" in message.fields_by_name
    }
    assert carriers == {
        "Credential",  # value: INPUT_ONLY, never set by the servicer
        "UseCredentialResponse",  # internal only
        "CreateWebhookTriggerResponse",  # the token, once
        "RotateWebhookTriggerTokenResponse",  # the new token, once
        "DeliverWebhookRequest",  # a request
    }
