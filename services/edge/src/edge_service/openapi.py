"""The OpenAPI 3.1 document, generated from the same descriptors the edge routes by."""

from __future__ import annotations

import re
from typing import Any, cast

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from railguard.access.v1 import access_pb2
from servicekit.access import ROLE_NAMES

from edge_service.routes import RouteTable

__all__ = ["build_openapi", "openapi_path"]

_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]+))?\}")
_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_INT64: {"type": "string", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
}
_WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
    "google.protobuf.Empty": {"type": "object", "additionalProperties": False},
}


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

    def ref(self, descriptor: Descriptor) -> dict[str, Any]:
        if descriptor.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[descriptor.full_name])
        name = descriptor.full_name
        if name not in self.components:
            self.components[name] = {}  # placeholder against recursion
            self.components[name] = self._message(descriptor)
        return {"$ref": f"#/components/schemas/{name}"}

    def _enum(self, descriptor: EnumDescriptor) -> dict[str, Any]:
        return {"type": "string", "enum": [v.name for v in descriptor.values]}

    def _field(self, field: FieldDescriptor) -> dict[str, Any]:
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            schema = self.ref(cast(Descriptor, field.message_type))
        elif field.type == FieldDescriptor.TYPE_ENUM:
            schema = self._enum(cast(EnumDescriptor, field.enum_type))
        else:
            schema = dict(_SCALARS.get(field.type, {"type": "string"}))
        if field.is_repeated:
            return {"type": "array", "items": schema}
        return schema

    def _message(self, descriptor: Descriptor) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {f.json_name: self._field(f) for f in descriptor.fields},
        }


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


def build_openapi(routes: RouteTable, server_url: str = "/") -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    problem = {"$ref": "#/components/schemas/Problem"}
    for route in routes.routes:
        rule = route.info.rule
        assert rule is not None
        path, params = openapi_path(route.binding.template)
        operation: dict[str, Any] = {
            "operationId": route.info.operation_id,
            "tags": [route.info.service.name],
            "description": _describe_rule(rule),
            "parameters": [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {"schema": schemas.ref(route.info.method.output_type)}
                    },
                },
                "default": {
                    "description": "An error",
                    "content": {"application/problem+json": {"schema": problem}},
                },
            },
            "security": []
            if rule.public
            else [{"bearer": []}] + ([{"apiKey": []}] if rule.scope else []),
        }
        input_type = route.info.method.input_type
        if route.binding.body == "*":
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schemas.ref(input_type)}},
            }
        elif route.binding.body:
            field = input_type.fields_by_name[route.binding.body]
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schemas._field(field)}},
            }
        else:
            path_fields = {v.split(".")[0] for v in route.variables}
            for f in input_type.fields:
                if f.name not in path_fields and f.type != FieldDescriptor.TYPE_MESSAGE:
                    operation["parameters"].append(
                        {
                            "name": f.json_name,
                            "in": "query",
                            "required": False,
                            "schema": schemas._field(f),
                        }
                    )
        paths.setdefault(path, {})[route.binding.verb.lower()] = operation
    schemas.components["Problem"] = {
        "type": "object",
        "required": ["type", "title", "status", "code", "request_id"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "code": {"type": "string", "description": "A stable UPPER_SNAKE error code."},
            "detail": {"type": "string"},
            "request_id": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"field": {"type": "string"}, "detail": {"type": "string"}},
                },
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Railguard API",
            "version": "1.0.0",
            "description": "Generated from the gRPC contracts.",
        },
        "servers": [{"url": server_url}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT or rg_ API key",
                },
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
