"""The OpenAPI document is generated from the contracts: every routed RPC, no internal one."""

from __future__ import annotations

from edge_service.app import contract_modules
from edge_service.openapi import build_openapi, openapi_path
from edge_service.routes import RouteTable
from servicekit.access import describe_services


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
