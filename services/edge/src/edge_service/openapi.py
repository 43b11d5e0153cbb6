"""The OpenAPI 3.1 document, generated from the same descriptors the edge routes by.

(Over 500 lines: one walk over the descriptors and the proto3 JSON mapping of every field type;
split, the mapping rules would be read in pieces.)

It says what the edge does, exactly:

- messages follow the proto3 JSON mapping the edge renders with (``json_format``): maps are
  objects, 64-bit integers are decimal strings, bytes are base64, enums are their value names,
  and the well-known types take their JSON forms (Struct → object, Value → any JSON, Timestamp →
  RFC 3339, Duration → ``"1.5s"``, FieldMask → ``"a,b"``, wrappers → nullable scalars);
- ``google.api.field_behavior`` decides the views: a response schema marks OUTPUT_ONLY fields
  ``readOnly`` and lists REQUIRED ones as ``required``; a request schema (``…Input``) leaves out
  OUTPUT_ONLY and IDENTIFIER fields (the server sets them, or the path does) and marks
  INPUT_ONLY ones ``writeOnly``; a PATCH body (``…Patch``) requires nothing, since the update mask
  says what is read;
- path variables: a route ``/v1/{name=workspaces/*/apiKeys/*}`` is served at
  ``/v1/workspaces/{workspace}/apiKeys/{apiKey}``; each parameter is one segment of the resource
  name the RPC receives (``name = "workspaces/<workspace>/apiKeys/<apiKey>"``), constrained to
  the segment pattern the edge checks (``constraints.ID_SEGMENT_PATTERN``);
- security per operation from the access rule, problem+json responses per operation, and the
  edge's own routes (whoami, JWKS, health, readiness, this document, the WSS audit stream).
"""

from __future__ import annotations

import re
from typing import Any, Literal, cast

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from railguard.access.v1 import access_pb2
from servicekit.access import ROLE_NAMES

from edge_service.constraints import (
    DEFAULT_PAGE_SIZE,
    ID_SEGMENT_PATTERN,
    MAX_PAGE_SIZE,
    REQUEST_ID_PATTERN,
    field_constraints,
)
from edge_service.routes import Route, RouteTable

__all__ = ["build_openapi", "openapi_path"]

View = Literal["out", "in", "patch"]

_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]+))?\}")
_INT64 = r"^-?[0-9]+$"
_UINT64 = r"^[0-9]+$"
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte", "contentEncoding": "base64"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    FieldDescriptor.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    # proto3 JSON renders 64-bit integers as decimal strings (they exceed a double's precision)
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64", "pattern": _INT64},
    FieldDescriptor.TYPE_SINT64: {"type": "string", "format": "int64", "pattern": _INT64},
    FieldDescriptor.TYPE_SFIXED64: {"type": "string", "format": "int64", "pattern": _INT64},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64", "pattern": _UINT64},
    FieldDescriptor.TYPE_FIXED64: {"type": "string", "format": "uint64", "pattern": _UINT64},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number", "format": "float"},
}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
        "description": "A duration in seconds with up to nine fractional digits, e.g. `3600s`.",
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated lowerCamelCase field paths, e.g. `displayName,scopes`.",
    },
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {"description": "Any JSON value."},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": {
        "type": "object",
        "required": ["@type"],
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
    "google.protobuf.BoolValue": _nullable(_SCALARS[FieldDescriptor.TYPE_BOOL]),
    "google.protobuf.StringValue": _nullable(_SCALARS[FieldDescriptor.TYPE_STRING]),
    "google.protobuf.BytesValue": _nullable(_SCALARS[FieldDescriptor.TYPE_BYTES]),
    "google.protobuf.Int32Value": _nullable(_SCALARS[FieldDescriptor.TYPE_INT32]),
    "google.protobuf.UInt32Value": _nullable(_SCALARS[FieldDescriptor.TYPE_UINT32]),
    "google.protobuf.Int64Value": _nullable(_SCALARS[FieldDescriptor.TYPE_INT64]),
    "google.protobuf.UInt64Value": _nullable(_SCALARS[FieldDescriptor.TYPE_UINT64]),
    "google.protobuf.FloatValue": _nullable(_SCALARS[FieldDescriptor.TYPE_FLOAT]),
    "google.protobuf.DoubleValue": _nullable(_SCALARS[FieldDescriptor.TYPE_DOUBLE]),
}
_SUFFIX: dict[View, str] = {"out": "", "in": "Input", "patch": "Patch"}
_PAGE_SIZE = {
    "type": "integer",
    "format": "int32",
    "minimum": 0,
    "maximum": MAX_PAGE_SIZE,
    "default": DEFAULT_PAGE_SIZE,
    "description": f"At most {MAX_PAGE_SIZE}; 0 means the default ({DEFAULT_PAGE_SIZE}); "
    f"larger values are capped at {MAX_PAGE_SIZE}.",
}


def behaviors(field: FieldDescriptor) -> set[int]:
    """The field's ``google.api.field_behavior`` values."""
    return set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])


def _is_request_id(field: FieldDescriptor) -> bool:
    return field.name == "request_id" and field.type == FieldDescriptor.TYPE_STRING


def _sourced(field: FieldDescriptor) -> access_pb2.FieldSource | None:
    options = field.GetOptions()
    if options.HasExtension(access_pb2.source):
        return options.Extensions[access_pb2.source]
    return None


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") else word


def openapi_path(template: str) -> tuple[str, list[str]]:
    """``/v1/{name=workspaces/*/members/*}`` → ``/v1/workspaces/{workspace}/members/{member}``."""
    params: list[str] = []

    def expand(match: re.Match[str]) -> str:
        pattern = match.group(2) or "*"
        if pattern == "*":
            params.append(match.group(1).replace(".", "_"))
            return "{" + params[-1] + "}"
        out, previous = [], "id"
        for segment in pattern.split("/"):
            if segment == "*":
                params.append(_singular(previous))
                out.append("{" + params[-1] + "}")
            else:
                out.append(segment)
                previous = segment
        return "/".join(out)

    return _VARIABLE.sub(expand, template), params


class _Schemas:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def ref(self, descriptor: Descriptor, view: View = "out") -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        name = descriptor.full_name + _SUFFIX[view]
        if name not in self.components:
            self.components[name] = {}  # placeholder against recursion
            self.components[name] = self.message(descriptor, view)
        return {"$ref": f"#/components/schemas/{name}"}

    @staticmethod
    def enum(descriptor: EnumDescriptor) -> dict[str, Any]:
        return {"type": "string", "enum": [v.name for v in descriptor.values]}

    def field(self, field: FieldDescriptor, view: View = "out") -> dict[str, Any]:
        message = field.message_type
        if message is not None and message.GetOptions().map_entry:
            value = self.field(message.fields_by_name["value"], view)
            return {
                "type": "object",
                "additionalProperties": value,
                **field_constraints(field.full_name),
            }
        if message is not None:
            schema = self.ref(message, view)
        elif field.type == FieldDescriptor.TYPE_ENUM:
            schema = self.enum(cast(EnumDescriptor, field.enum_type))
        else:
            schema = dict(_SCALARS.get(field.type, {"type": "string"}))
        if field.name == "page_size" and field.type == FieldDescriptor.TYPE_INT32:
            schema = dict(_PAGE_SIZE)
        if _is_request_id(field) and view != "out":
            schema = {
                "type": "string",
                "description": "An idempotency key: a retry with the same value returns the "
                "first result.",
            }
        if field.is_repeated:
            return {"type": "array", "items": schema}
        return {**schema, **field_constraints(field.full_name)} if "$ref" not in schema else schema

    def fields(
        self,
        descriptor: Descriptor,
        view: View,
        skip: frozenset[str] | set[str] = frozenset(),
    ) -> tuple[dict[str, Any], list[str]]:
        """(properties, required) of a message in a view, leaving out ``skip`` field names."""
        properties: dict[str, Any] = {}
        names: list[str] = []
        for f in cast(list[FieldDescriptor], descriptor.fields):
            if f.name in skip:
                continue
            kinds = behaviors(f)
            if view == "out" and field_behavior_pb2.INPUT_ONLY in kinds:
                continue  # never rendered
            if view != "out" and (
                field_behavior_pb2.OUTPUT_ONLY in kinds or field_behavior_pb2.IDENTIFIER in kinds
            ):
                continue  # set by the server or by the path, ignored in a body
            if view != "out" and _sourced(f) is not None:
                continue  # filled from a header or the request itself, refused in a body
            schema = self.field(f, view)
            required = field_behavior_pb2.REQUIRED in kinds and view != "patch"
            if required and view == "in" and schema.get("type") == "string":
                schema.setdefault("minLength", 1)  # REQUIRED: an empty string is unset
            if field_behavior_pb2.OUTPUT_ONLY in kinds or field_behavior_pb2.IDENTIFIER in kinds:
                schema = {**_wrap(schema), "readOnly": True}
            if field_behavior_pb2.INPUT_ONLY in kinds:
                schema = {**_wrap(schema), "writeOnly": True}
            if field_behavior_pb2.IMMUTABLE in kinds:
                schema = {**_wrap(schema), "description": "Immutable: set on create only."}
            properties[f.json_name] = schema
            if required:
                names.append(f.json_name)
        return properties, names

    def message(
        self,
        descriptor: Descriptor,
        view: View,
        skip: frozenset[str] | set[str] = frozenset(),
    ) -> dict[str, Any]:
        properties, required = self.fields(descriptor, view, skip)
        schema: dict[str, Any] = {
            "type": "object",
            "additionalProperties": False,
            "properties": properties,
        }
        if required:
            schema["required"] = required
        return schema


def _wrap(schema: dict[str, Any]) -> dict[str, Any]:
    """A ``$ref`` cannot carry siblings in every tool: put it under ``allOf`` first."""
    return {"allOf": [schema]} if "$ref" in schema else schema


def _describe_rule(rule: access_pb2.AccessRule) -> str:
    if rule.public:
        return "Public: no authentication."
    who = (
        "Any authenticated user"
        if rule.min_role == access_pb2.ROLE_UNSPECIFIED
        else (f"Workspace role {ROLE_NAMES[rule.min_role]} or above")
    )
    keys = f"; API keys with scope `{rule.scope}`" if rule.scope else "; API keys not accepted"
    return f"{who}{keys}."


def _security(rule: access_pb2.AccessRule) -> list[dict[str, list[str]]]:
    if rule.public:
        return []
    schemes: list[dict[str, list[str]]] = [{"bearerAuth": []}]
    if rule.scope:
        schemes.append({"apiKey": [rule.scope]})
    return schemes


_PROBLEM_TEXT = {
    400: "The request is invalid: a field, a path segment or the body (see `errors`).",
    401: "No valid credential was presented.",
    403: "The credential does not allow this operation (role, scope, MFA, origin).",
    404: "No such resource, or not one the caller may see.",
    409: "The resource already exists or changed concurrently.",
    413: "The body is larger than the edge accepts.",
    415: "The body is not application/json.",
    429: "Rate limited: retry after `Retry-After` seconds.",
    503: "A service is unavailable: retry later.",
}


def _problems(statuses: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status in statuses:
        response: dict[str, Any] = {"$ref": f"#/components/responses/Problem{status}"}
        out[str(status)] = response
    out["default"] = {"$ref": "#/components/responses/Problem"}
    return out


def _ok(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {
        "description": "OK",
        "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
        "content": {media: {"schema": schema}},
    }


def _error_statuses(route: Route) -> list[int]:
    rule = route.info.rule
    assert rule is not None
    statuses = [400]
    if not rule.public:
        statuses += [401, 403]
    statuses.append(404)
    if route.binding.verb != "GET":
        statuses.append(409)
    if route.binding.body:
        statuses += [413, 415]
    statuses += [429, 503]
    return statuses


def _operation(route: Route, schemas: _Schemas) -> tuple[str, dict[str, Any]]:
    rule = route.info.rule
    assert rule is not None
    path, params = openapi_path(route.binding.template)
    input_type = route.info.method.input_type
    parameters: list[dict[str, Any]] = []
    fields = ", ".join(f"`{v}`" for v in route.variables)
    for param in params:
        parameters.append(
            {
                "name": param,
                "in": "path",
                "required": True,
                "description": f"One id segment of the resource name the RPC receives as {fields}.",
                "schema": {"type": "string", "pattern": ID_SEGMENT_PATTERN},
            }
        )
    path_fields = {v.split(".")[0] for v in route.variables}
    patch = route.binding.verb == "PATCH"
    operation: dict[str, Any] = {
        "operationId": route.info.operation_id,
        "tags": [route.info.service.name],
        "description": _describe_rule(rule),
        "security": _security(rule),
    }
    body = route.binding.body
    for f in cast(list[FieldDescriptor], input_type.fields):
        source = _sourced(f)
        if source is not None:
            if source.header:
                parameters.append(
                    {
                        "name": source.header,
                        "in": "header",
                        "required": field_behavior_pb2.REQUIRED in behaviors(f),
                        "schema": {"type": "string"},
                    }
                )
            continue
        if body == "*" or f.name == body or f.name in path_fields:
            continue
        message = f.message_type
        if message is not None and message.full_name != "google.protobuf.FieldMask":
            continue  # the edge takes no message in a query string
        if message is not None and message.GetOptions().map_entry:
            continue
        parameters.append(
            {
                "name": f.json_name,
                "in": "query",
                "required": field_behavior_pb2.REQUIRED in behaviors(f),
                "schema": schemas.field(f, "in"),
                **({"style": "form", "explode": True} if f.is_repeated else {}),
            }
        )
    operation["parameters"] = parameters
    view: View = "patch" if patch else "in"
    if body == "*":
        name = f"{route.info.operation_id}Body"
        if name not in schemas.components:
            schemas.components[name] = schemas.message(input_type, view, skip=path_fields)
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    elif body:
        field = input_type.fields_by_name[body]
        operation["requestBody"] = {
            "required": field_behavior_pb2.REQUIRED in behaviors(field),
            "content": {"application/json": {"schema": schemas.field(field, view)}},
        }
    operation["responses"] = {
        "200": _ok(schemas.ref(route.info.method.output_type)),
        **_problems(_error_statuses(route)),
    }
    return path, operation


_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem; `code` is stable and meant for programs.",
    "required": ["type", "title", "status", "code", "request_id"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {
            "type": "string",
            "pattern": "^[A-Z][A-Z0-9_]*$",
            "description": "A stable UPPER_SNAKE error code.",
        },
        "detail": {"type": "string"},
        "request_id": {"type": "string", "pattern": REQUEST_ID_PATTERN},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "detail"],
                "properties": {"field": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
    },
}

_WHOAMI: dict[str, Any] = {
    "type": "object",
    "required": ["type", "clientIp", "rateLimits"],
    "properties": {
        "type": {"type": "string", "enum": ["user", "apiKey"]},
        "userId": {"type": "string"},
        "sessionId": {"type": "string"},
        "aal": {"type": "string", "enum": ["aal1", "aal2"]},
        "amr": {"type": "array", "items": {"type": "string"}},
        "apiKeyId": {"type": "string"},
        "workspace": {"type": "string"},
        "createdBy": {"type": "string"},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "clientIp": {"type": "string"},
        "rateLimits": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["class", "quota", "windowSeconds"],
                "properties": {
                    "class": {"type": "string"},
                    "quota": {"type": "integer"},
                    "windowSeconds": {"type": "integer"},
                },
            },
        },
    },
}

_JWKS: dict[str, Any] = {
    "type": "object",
    "required": ["keys"],
    "properties": {
        "keys": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["kty"],
                "properties": {
                    "kty": {"type": "string"},
                    "crv": {"type": "string"},
                    "x": {"type": "string"},
                    "kid": {"type": "string"},
                    "alg": {"type": "string"},
                    "use": {"type": "string"},
                },
            },
        }
    },
}


def _status(values: list[str]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": values}},
    }


def _edge_routes(stream_rule: access_pb2.AccessRule | None) -> dict[str, dict[str, Any]]:
    """The edge's hand-written routes (``gateway.build_app`` and ``audit_stream``)."""
    plain = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
    paths: dict[str, dict[str, Any]] = {
        "/healthz": {
            "get": {
                "operationId": "Edge.Healthz",
                "tags": ["Edge"],
                "description": "Liveness: the edge process answers.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Alive",
                        "content": {"application/json": {"schema": _status(["ok"])}},
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "Edge.Readyz",
                "tags": ["Edge"],
                "description": "Readiness: the token-verification keys (and Redis, when "
                "configured) are reachable.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "Ready",
                        "content": {"application/json": {"schema": _status(["ready"])}},
                    },
                    "503": {
                        "description": "Not ready",
                        "content": {"application/json": {"schema": _status(["not ready"])}},
                    },
                },
            }
        },
        "/.well-known/jwks.json": {
            "get": {
                "operationId": "Edge.Jwks",
                "tags": ["Edge"],
                "description": "The public keys that verify Railguard access tokens (EdDSA).",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The JSON Web Key Set",
                        "content": {"application/jwk-set+json": {"schema": _JWKS}},
                    },
                    "503": {"$ref": "#/components/responses/Problem503"},
                },
            }
        },
        "/openapi.json": {
            "get": {
                "operationId": "Edge.OpenApi",
                "tags": ["Edge"],
                "description": "This document.",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "/v1/whoami": {
            "get": {
                "operationId": "Edge.WhoAmI",
                "tags": ["Edge"],
                "description": "The principal behind the presented access token or API key, "
                "its workspace, scopes and rate limits. API keys need no particular scope.",
                "security": [{"bearerAuth": []}, {"apiKey": []}],
                "responses": {
                    "200": {
                        "description": "OK",
                        "headers": plain,
                        "content": {"application/json": {"schema": _WHOAMI}},
                    },
                    **_problems([400, 401, 403, 429, 503]),
                },
            }
        },
    }
    if stream_rule is not None:
        paths["/v1/workspaces/{workspace}/auditEvents:stream"] = {
            "get": {
                "operationId": "Edge.StreamAuditEvents",
                "tags": ["WorkspacesService"],
                "description": "A WebSocket (WSS only): send `Connection: Upgrade`, "
                "`Upgrade: websocket`. Every audit event after `after` arrives as one JSON text "
                "frame (an `AuditEvent` as ListAuditEvents renders it), then each new one. "
                "Authorized like ListAuditEvents: "
                + _describe_rule(stream_rule)
                + " Browsers offer the token as the subprotocol pair "
                "`railguard.bearer, <token>`; credentials never travel in the URL.",
                "security": _security(stream_rule),
                "parameters": [
                    {
                        "name": "workspace",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": ID_SEGMENT_PATTERN},
                    },
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "default": 0},
                    },
                ],
                "responses": {
                    "101": {
                        "description": "Switching protocols: the stream is open.",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "$ref": "#/components/schemas/"
                                    "railguard.workspaces.v1.AuditEvent"
                                }
                            }
                        },
                    },
                    "426": {"$ref": "#/components/responses/Problem426"},
                    **_problems([400, 401, 403, 404, 429, 503]),
                },
            }
        }
    return paths


def build_openapi(
    routes: RouteTable,
    server_url: str = "/",
    stream_rule: access_pb2.AccessRule | None = None,
) -> dict[str, Any]:
    """The whole document; ``stream_rule`` (ListAuditEvents' rule) adds the WSS audit stream."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for route in routes.routes:
        path, operation = _operation(route, schemas)
        paths.setdefault(path, {})[route.binding.verb.lower()] = operation
    if stream_rule is not None:
        schemas.ref(_audit_event_descriptor())
    paths.update(_edge_routes(stream_rule))
    schemas.components["Problem"] = _PROBLEM_SCHEMA
    problem_content = {
        "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    responses: dict[str, Any] = {
        "Problem": {"description": "An error", "content": problem_content},
    }
    for status, text in {**_PROBLEM_TEXT, 426: "Send a WebSocket upgrade."}.items():
        headers: dict[str, Any] = {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}
        if status in (429, 503):
            headers["Retry-After"] = {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "integer", "minimum": 1},
            }
        responses[f"Problem{status}"] = {
            "description": text,
            "headers": headers,
            "content": problem_content,
        }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Railguard API",
            "version": "1.0.0",
            "description": "Generated from the gRPC contracts. Resource names are "
            "`collection/id` paths (`workspaces/{workspace}/apiKeys/{apiKey}`); each path "
            "parameter is one id segment of such a name.",
        },
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "responses": responses,
            "headers": {
                "X-Request-Id": {
                    "description": "The request id: the caller's own when it matches the "
                    "pattern, otherwise one the edge generated.",
                    "schema": {"type": "string", "pattern": REQUEST_ID_PATTERN},
                }
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Railguard access token; an API key (`rg_live_…`, "
                    "`rg_test_…`) is also accepted as a bearer token where `apiKey` is.",
                },
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


def _audit_event_descriptor() -> Descriptor:
    from railguard.workspaces.v1 import workspaces_service_pb2

    return workspaces_service_pb2.AuditEvent.DESCRIPTOR
