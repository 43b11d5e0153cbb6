"""Routes compiled from the contracts, and HTTP→proto transcoding of good and bad input."""

from __future__ import annotations

import pytest
from edge_service.app import contract_modules
from edge_service.routes import RouteTable, compile_template
from edge_service.transcode import build_request, json_too_deep
from servicekit import InvalidArgument
from servicekit.access import describe_services


@pytest.fixture(scope="module")
def table() -> RouteTable:
    return RouteTable(describe_services(contract_modules()))


def test_template_with_verb_and_nested_variable() -> None:
    regex, variables = compile_template("/v1/{member.name=workspaces/*/members/*}")
    assert variables == ("member.name",)
    assert regex.match("/v1/workspaces/w1/members/u1")
    assert not regex.match("/v1/workspaces/w1/members/u1/extra")
    regex, _ = compile_template("/v1/{name=workspaces/*}:undelete")
    assert regex.match("/v1/workspaces/w1:undelete")
    assert not regex.match("/v1/workspaces/w1")


def test_internal_rpcs_are_never_routed(table: RouteTable) -> None:
    routed = {r.info.method.name for r in table.routes}
    for info in describe_services(contract_modules()):
        if info.rule is not None and info.rule.internal_callers:
            assert info.method.name not in routed


def test_literal_route_beats_variable_route(table: RouteTable) -> None:
    route, _ = table.resolve("GET", "/v1/users/me")
    assert route is not None and route.info.method.name == "GetCurrentUser"


def test_unknown_verb_is_reported_as_other_verb(table: RouteTable) -> None:
    route, other = table.resolve("PUT", "/v1/users/me")
    assert route is None and other


def _route(table: RouteTable, verb: str, path: str):  # type: ignore[no-untyped-def]
    route, _ = table.resolve(verb, path)
    assert route is not None
    return route, route.match(path) or {}


def test_body_and_path_fill_the_request(table: RouteTable) -> None:
    route, params = _route(table, "PATCH", "/v1/workspaces/w1")
    msg = build_request(
        route,
        params,
        b'{"displayName": "New", "plan": "PLAN_TEAM"}',
        {"updateMask": ["displayName,plan"]},
    )
    assert msg.workspace.name == "workspaces/w1"  # type: ignore[attr-defined]
    assert msg.workspace.display_name == "New"  # type: ignore[attr-defined]
    assert list(msg.update_mask.paths) == ["display_name", "plan"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        (b"{not json", "MALFORMED_JSON", None),
        (b"[1, 2]", "MALFORMED_JSON", None),
        (b'{"email": "a@b.c", "password": "x", "admin": true}', "UNKNOWN_FIELD", "admin"),
        (b'{"email": ["a"], "password": "x"}', "INVALID_FIELD", "email"),
    ],
)
def test_bad_bodies_name_the_field_and_never_echo_values(
    table: RouteTable, body: bytes, reason: str, field: str | None
) -> None:
    route, params = _route(table, "POST", "/v1/users")
    with pytest.raises(InvalidArgument) as err:
        build_request(route, params, body, {})
    assert err.value.reason == reason
    if field:
        assert [v.field for v in err.value.violations] == [field]
    assert "a@b.c" not in err.value.message


def test_unknown_query_parameter_is_refused(table: RouteTable) -> None:
    route, params = _route(table, "GET", "/v1/workspaces")
    with pytest.raises(InvalidArgument) as err:
        build_request(route, params, b"", {"bogus": ["1"]})
    assert err.value.reason == "UNKNOWN_FIELD"


def test_query_parameters_are_typed(table: RouteTable) -> None:
    route, params = _route(table, "GET", "/v1/workspaces")
    msg = build_request(route, params, b"", {"pageSize": ["5"], "showDeleted": ["true"]})
    assert msg.page_size == 5 and msg.show_deleted is True  # type: ignore[attr-defined]
    with pytest.raises(InvalidArgument):
        build_request(route, params, b"", {"pageSize": ["five"]})
    with pytest.raises(InvalidArgument):
        build_request(route, params, b"", {"showDeleted": ["yes"]})


def test_body_on_a_bodiless_method_is_refused(table: RouteTable) -> None:
    route, params = _route(table, "GET", "/v1/users/me")
    with pytest.raises(InvalidArgument) as err:
        build_request(route, params, b'{"a": 1}', {})
    assert err.value.reason == "UNEXPECTED_BODY"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 20_000 + b"]" * 20_000,
        b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
        b'{"email": ' + b"[" * 33 + b"]" * 33 + b"}",  # just past the limit
    ],
)
def test_deep_nesting_is_malformed_json_before_any_recursion(
    table: RouteTable, body: bytes
) -> None:
    route, params = _route(table, "POST", "/v1/users")
    with pytest.raises(InvalidArgument) as err:
        build_request(route, params, body, {})
    assert err.value.reason == "MALFORMED_JSON"


def test_nesting_is_counted_outside_strings_only() -> None:
    assert not json_too_deep(b'{"a": "' + b"[" * 100 + b'\\" {{{{"}')
    assert not json_too_deep(b"[" * 32 + b"]" * 32)
    assert json_too_deep(b"[" * 33 + b"]" * 33)
