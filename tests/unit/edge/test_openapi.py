"""The OpenAPI document is generated from the contracts: every routed RPC, no internal one."""

from __future__ import annotations

from typing import Any

import pytest
from edge_service.app import contract_modules
from edge_service.constraints import ID_SEGMENT_PATTERN
from edge_service.openapi import build_openapi, openapi_path
from edge_service.routes import RouteTable
from openapi_spec_validator import validate
from servicekit.access import describe_services
from servicekit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE


def test_paths_use_named_parameters() -> None:
    assert openapi_path("/v1/{name=workspaces/*/members/*}") == (
        "/v1/workspaces/{workspace}/members/{member}",
        ["workspace", "member"],
    )


def test_every_routed_rpc_has_an_operation_and_internal_ones_none() -> None:
    infos = describe_services(contract_modules())
    doc = build_openapi(RouteTable(infos))
    ids = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    for info in infos:
        assert info.rule is not None
        if info.rule.internal_callers:
            assert info.operation_id not in ids
        elif info.http:
            assert info.operation_id in ids
    assert doc["openapi"] == "3.1.0"
    assert "AuthService.Login" in ids


# --- the document says exactly what the edge does (issue 14) ---------------------------------

LIST_AUDIT = "/railguard.workspaces.v1.WorkspacesService/ListAuditEvents"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    infos = describe_services(contract_modules())
    rules = {info.full_method: info.rule for info in infos}
    return build_openapi(RouteTable(infos), stream_rule=rules[LIST_AUDIT])


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc["components"]["schemas"][name]


def _ops(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(p, verb, op) for p, item in doc["paths"].items() for verb, op in item.items()]


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    validate(doc)


def test_maps_are_objects_with_typed_values(doc: dict[str, Any]) -> None:
    metadata = _schema(doc, "railguard.workspaces.v1.AuditEvent")["properties"]["metadata"]
    assert metadata["type"] == "object"
    assert metadata["additionalProperties"] == {"type": "string"}
    assert not any(name.endswith("Entry") for name in doc["components"]["schemas"])


def test_well_known_types_follow_the_proto3_json_mapping(doc: dict[str, Any]) -> None:
    hook = doc["paths"]["/v1/hooks/{trigger_id}"]["post"]["requestBody"]
    body = hook["content"]["application/json"]["schema"]
    assert body == {"type": "object", "additionalProperties": True}  # Struct, not {"fields": …}
    key = _schema(doc, "railguard.keys.v1.ApiKey")["properties"]
    assert key["createTime"]["format"] == "date-time"
    rotate = _schema(doc, "KeysService.RotateApiKeyBody")["properties"]["gracePeriod"]
    assert rotate["type"] == "string" and rotate["pattern"].endswith("s$")
    sequence = _schema(doc, "railguard.workspaces.v1.AuditEvent")["properties"]["sequence"]
    assert sequence["type"] == "string" and sequence["format"] == "int64"  # int64 → string
    update = doc["paths"]["/v1/workspaces/{workspace}"]["patch"]["parameters"]
    mask = next(p for p in update if p["name"] == "updateMask")
    assert mask["schema"]["type"] == "string" and mask["in"] == "query"


def test_field_behavior_decides_required_read_only_and_write_only(doc: dict[str, Any]) -> None:
    create = doc["paths"]["/v1/workspaces/{workspace}/apiKeys"]["post"]["requestBody"]
    assert create["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/railguard.keys.v1.ApiKeyInput"
    }
    key_in = _schema(doc, "railguard.keys.v1.ApiKeyInput")
    assert {"displayName", "environment", "scopes"} <= set(key_in["required"])
    for output_only in ("name", "prefix", "createTime", "state", "createdBy"):
        assert output_only not in key_in["properties"]
    key_out = _schema(doc, "railguard.keys.v1.ApiKey")
    assert key_out["properties"]["prefix"]["readOnly"] is True
    assert key_out["properties"]["name"]["readOnly"] is True
    assert "environment" in key_out["required"]
    patch = _schema(doc, "railguard.keys.v1.ApiKeyPatch")
    assert "required" not in patch  # the update mask says what is read
    login = _schema(doc, "AuthService.LoginBody")
    assert login["properties"]["password"]["writeOnly"] is True
    assert {"email", "password"} <= set(login["required"])


def test_path_parameters_are_resource_name_segments_with_the_edge_pattern(
    doc: dict[str, Any],
) -> None:
    op = doc["paths"]["/v1/workspaces/{workspace}/apiKeys/{apiKey}"]["get"]
    params = {p["name"]: p for p in op["parameters"] if p["in"] == "path"}
    assert set(params) == {"workspace", "apiKey"}
    for p in params.values():
        assert p["schema"]["pattern"] == ID_SEGMENT_PATTERN
        assert "`name`" in p["description"]
    for path, _verb, op in _ops(doc):
        for p in op.get("parameters", []):
            if p["in"] == "path":
                assert "{" + p["name"] + "}" in path
                assert p["schema"]["pattern"] == ID_SEGMENT_PATTERN


def test_page_sizes_are_bounded_like_the_services_bound_them(doc: dict[str, Any]) -> None:
    found = 0
    for _path, _verb, op in _ops(doc):
        for p in op.get("parameters", []):
            if p["name"] == "pageSize":
                found += 1
                assert p["schema"]["minimum"] == 0
                assert p["schema"]["maximum"] == MAX_PAGE_SIZE
                assert p["schema"]["default"] == DEFAULT_PAGE_SIZE
    assert found >= 8


def test_idempotency_request_id_is_a_parameter_where_it_exists(doc: dict[str, Any]) -> None:
    for path in ("/v1/workspaces", "/v1/workspaces/{workspace}/apiKeys"):
        names = [p["name"] for p in doc["paths"][path]["post"]["parameters"]]
        assert "requestId" in names, path


def test_security_follows_the_access_rules(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {**schemes["bearerAuth"], "type": "http", "scheme": "bearer"}
    assert schemes["apiKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    by_id = {op["operationId"]: op for _p, _v, op in _ops(doc)}
    assert by_id["AuthService.Login"]["security"] == []
    assert by_id["KeysService.CreateApiKey"]["security"] == [
        {"bearerAuth": []},
        {"apiKey": ["keys:write"]},
    ]
    assert by_id["AuthService.ChangePassword"]["security"] == [{"bearerAuth": []}]


def test_every_served_route_is_described(doc: dict[str, Any]) -> None:
    for path in ("/v1/whoami", "/.well-known/jwks.json", "/healthz", "/readyz", "/openapi.json"):
        assert "get" in doc["paths"][path], path
    stream = doc["paths"]["/v1/workspaces/{workspace}/auditEvents:stream"]["get"]
    assert "101" in stream["responses"]
    assert stream["security"] == [{"bearerAuth": []}, {"apiKey": ["audit:read"]}]


def test_problem_responses_per_operation(doc: dict[str, Any]) -> None:
    problem = _schema(doc, "Problem")
    assert {"type", "title", "status", "code", "request_id"} <= set(problem["required"])
    for _path, _verb, op in _ops(doc):
        if not op["operationId"].startswith("Edge.") or op["operationId"] == "Edge.WhoAmI":
            responses = op["responses"]
            assert {"400", "429", "503", "default"} <= set(responses), op["operationId"]
            if op["security"]:
                assert {"401", "403"} <= set(responses), op["operationId"]
    created = doc["components"]["responses"]["Problem409"]
    assert created["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }


def test_stated_lengths_and_bounds_are_in_the_schemas(doc: dict[str, Any]) -> None:
    sign_up = _schema(doc, "AuthService.SignUpBody")["properties"]
    assert (sign_up["password"]["minLength"], sign_up["password"]["maxLength"]) == (12, 128)
    assert sign_up["email"]["maxLength"] == 254
    workspace = _schema(doc, "railguard.workspaces.v1.WorkspaceInput")["properties"]
    assert (workspace["displayName"]["minLength"], workspace["displayName"]["maxLength"]) == (
        1,
        100,
    )
    assert workspace["retentionDays"]["maximum"] == 365
    patch = _schema(doc, "railguard.workspaces.v1.WorkspacePatch")["properties"]
    assert "minLength" not in patch["displayName"]  # a PATCH may leave it out
    metadata = _schema(doc, "railguard.workspaces.v1.AuditEvent")["properties"]["metadata"]
    assert metadata["maxProperties"] == 16
