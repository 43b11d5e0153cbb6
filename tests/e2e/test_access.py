"""Access rules enforced at the edge: the role matrix generated from the contracts, isolation,
authentication failures, bad input and transport security."""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import ssl
import warnings

import pytest
from devstack import Stack
from edge_service.app import contract_modules
from railguard.access.v1 import access_pb2
from servicekit.access import RpcInfo, describe_services

from .conftest import E2E_SERVICES, Api

ROLES = {
    access_pb2.ROLE_USER: "ROLE_USER",
    access_pb2.ROLE_ADMIN: "ROLE_ADMIN",
    access_pb2.ROLE_OWNER: "ROLE_OWNER",
}


def _workspace_rpcs() -> list[tuple[RpcInfo, str, str, str]]:
    out = []
    for info in describe_services(contract_modules()):
        rule = info.rule
        assert rule is not None
        if rule.internal_callers or rule.min_role == access_pb2.ROLE_UNSPECIFIED:
            continue
        if info.service.full_name.split(".")[1] not in E2E_SERVICES:
            continue
        for binding in info.http:
            out.append((info, binding.verb, binding.template, binding.body))
    return out


def _path(template: str, ws_id: str) -> str:
    def expand(match: re.Match[str]) -> str:
        pattern = match.group(2) or "*"
        parts, first = [], True
        for segment in pattern.split("/"):
            if segment == "*":
                parts.append(ws_id if first else "x0")
                first = False
            else:
                parts.append(segment)
        return "/".join(parts)

    return re.sub(r"\{([a-z_.]+)(?:=([^}]+))?\}", expand, template)


async def _workspace_with_roles(api: Api) -> tuple[str, dict[int, str], str]:
    """A workspace with an Owner, an Admin and a User, plus an outsider's token."""
    owner_email, owner, _ = await api.user()
    s, ws, _ = await api.call("POST", "/v1/workspaces", owner, json={"displayName": "Matrix"})
    assert s == 200, ws
    tokens = {access_pb2.ROLE_OWNER: owner}
    for role in (access_pb2.ROLE_ADMIN, access_pb2.ROLE_USER):
        email, token, _ = await api.user()
        s, body, _ = await api.call(
            "POST", f"/v1/{ws['name']}/members", owner, json={"email": email, "role": ROLES[role]}
        )
        assert s == 200, body
        tokens[role] = token
    _, outsider, _ = await api.user()
    return ws["name"].split("/")[1], tokens, outsider


@pytest.mark.parametrize(
    ("info", "verb", "template", "body"),
    _workspace_rpcs(),
    ids=[f"{i.operation_id}" for i, *_ in _workspace_rpcs()],
)
async def test_role_matrix(api: Api, info: RpcInfo, verb: str, template: str, body: str) -> None:
    assert info.rule is not None
    ws_id, tokens, outsider = await _workspace_with_roles(api)
    path = _path(template, ws_id)
    payload = {} if body else None
    # a non-member sees exactly what a missing workspace looks like
    s, denied, _ = await api.call(verb, path, outsider, json=payload)
    s2, missing, _ = await api.call(
        verb, _path(template, secrets.token_hex(8)), outsider, json=payload
    )
    assert (s, denied["code"]) == (s2, missing["code"]) == (404, "NOT_FOUND")
    assert denied["detail"] == missing["detail"]
    # least privileged first, so a destructive call that is allowed runs last
    for role in (access_pb2.ROLE_USER, access_pb2.ROLE_ADMIN, access_pb2.ROLE_OWNER):
        s, result, _ = await api.call(verb, path, tokens[role], json=payload)
        code = (result or {}).get("code", "")
        if role < info.rule.min_role:
            assert (s, code) == (403, "ROLE_TOO_LOW"), (ROLES[role], s, result)
        else:
            assert s not in (401, 403) and code not in ("NOT_FOUND", "ROLE_TOO_LOW"), (
                ROLES[role],
                s,
                result,
            )
            assert s < 500, result


async def test_unauthenticated_and_forged_tokens(api: Api) -> None:
    s, body, headers = await api.call("GET", "/v1/workspaces")
    assert s == 401 and body["code"] == "UNAUTHENTICATED"
    assert headers["content-type"] == "application/problem+json"
    _, token, _ = await api.user()
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "someone-else"
    forged = (
        header
        + "."
        + base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        + "."
        + signature
    )
    s, body, _ = await api.call("GET", "/v1/workspaces", forged)
    assert s == 401 and body["code"] == "TOKEN_INVALID"
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt"}').decode().rstrip("=")
    s, body, _ = await api.call("GET", "/v1/workspaces", f"{none_header}.{payload}.")
    assert s == 401 and body["code"] == "TOKEN_INVALID"
    s, body, _ = await api.call(
        "GET", "/v1/workspaces", headers={"Authorization": "Basic dXNlcjpwYXNz"}
    )
    assert s == 401


@pytest.mark.parametrize(
    ("content", "code", "field"),
    [
        (b"{oops", "MALFORMED_JSON", None),
        (b'"just a string"', "MALFORMED_JSON", None),
        (b'{"displayName": "x", "owner": "me"}', "UNKNOWN_FIELD", "workspace.owner"),
        (b'{"displayName": 42}', "INVALID_FIELD", "workspace.displayName"),
        (b'{"displayName": ""}', "INVALID_DISPLAY_NAME", "workspace.display_name"),
        (
            b'{"displayName": "x", "retentionDays": 9999}',
            "INVALID_RETENTION",
            "workspace.retention_days",
        ),
    ],
)
async def test_bad_input_is_a_400_problem(
    api: Api, content: bytes, code: str, field: str | None
) -> None:
    _, token, _ = await api.user()
    s, body, headers = await api.call(
        "POST",
        "/v1/workspaces",
        token,
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert s == 400, body
    assert headers["content-type"] == "application/problem+json"
    assert body["code"] == code and body["status"] == 400 and body["request_id"]
    if field:
        assert [e["field"] for e in body["errors"]] == [field]


async def test_invalid_ids_and_unknown_routes(api: Api) -> None:
    _, token, _ = await api.user()
    s, body, _ = await api.call("GET", "/v1/workspaces/bad$id", token)
    assert s == 400 and body["code"] == "INVALID_NAME"
    s, body, _ = await api.call("GET", "/v1/nothing-here", token)
    assert s == 404 and body["code"] == "ROUTE_NOT_FOUND"
    s, body, _ = await api.call("PUT", "/v1/users/me", token)
    assert s == 405


async def test_a_body_that_is_not_json_is_415(api: Api) -> None:
    _, token, _ = await api.user()
    s, body, _ = await api.call(
        "POST",
        "/v1/workspaces",
        token,
        content=b"displayName=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (s, body["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")


async def test_oversized_body_is_refused(api: Api) -> None:
    s, body, _ = await api.call(
        "POST",
        "/v1/users",
        content=b'{"email": "' + b"a" * 100_000 + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert s == 413 and body["code"] == "BODY_TOO_LARGE"


async def test_security_headers_and_request_id(api: Api) -> None:
    s, _, headers = await api.call("GET", "/healthz")
    assert s == 200
    assert headers["strict-transport-security"].startswith("max-age=")
    assert headers["x-content-type-options"] == "nosniff"
    s, body, headers = await api.call("GET", "/v1/nothing-here")
    assert headers["x-request-id"] == body["request_id"]


async def test_openapi_and_jwks(api: Api) -> None:
    s, doc, _ = await api.call("GET", "/openapi.json")
    assert s == 200 and doc["openapi"] == "3.1.0"
    ids = {op["operationId"] for p in doc["paths"].values() for op in p.values()}
    assert "WorkspacesService.CreateWorkspace" in ids and "AuthService.GetJwks" not in ids
    s, jwks, _ = await api.call("GET", "/.well-known/jwks.json")
    assert s == 200 and all(
        k["kty"] == "OKP" and k["alg"] == "EdDSA" and "d" not in k for k in jwks["keys"]
    )


def _client(stack: Stack, version: ssl.TLSVersion) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(stack.certs / "ca.crt"))
    context.set_ciphers("DEFAULT:@SECLEVEL=0")  # the client is willing; the server must say no
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = version
        context.maximum_version = version
    return context


def test_tls_below_1_2_is_refused(stack: Stack) -> None:
    with socket.create_connection(("127.0.0.1", stack.ports.edge), timeout=5) as sock:
        with pytest.raises(ssl.SSLError):
            with _client(stack, ssl.TLSVersion.TLSv1_1).wrap_socket(
                sock, server_hostname="localhost"
            ):
                pass


def test_tls_1_2_is_accepted_with_forward_secret_aead(stack: Stack) -> None:
    with socket.create_connection(("127.0.0.1", stack.ports.edge), timeout=5) as sock:
        with _client(stack, ssl.TLSVersion.TLSv1_2).wrap_socket(
            sock, server_hostname="localhost"
        ) as tls:
            cipher, version, _ = tls.cipher() or ("", "", 0)
            assert version == "TLSv1.2"
            assert cipher.startswith("ECDHE") and ("GCM" in cipher or "CHACHA20" in cipher)


def test_tls_1_3_is_preferred(stack: Stack) -> None:
    context = ssl.create_default_context(cafile=str(stack.certs / "ca.crt"))
    with socket.create_connection(("127.0.0.1", stack.ports.edge), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            assert tls.version() == "TLSv1.3"
