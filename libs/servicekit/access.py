"""Access rules read from the contracts: the one place where "who may call what" is written."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType

from google.api import annotations_pb2, http_pb2
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from railguard.access.v1 import access_pb2

from servicekit.roles import role_at_least

__all__ = [
    "ROLE_NAMES",
    "HttpBinding",
    "RpcInfo",
    "describe_services",
    "role_at_least",
    "rule_of",
    "workspace_id_from_name",
]

AccessRule = access_pb2.AccessRule
Role = access_pb2.Role

ROLE_NAMES = {
    access_pb2.ROLE_UNSPECIFIED: "none",
    access_pb2.ROLE_USER: "user",
    access_pb2.ROLE_ADMIN: "admin",
    access_pb2.ROLE_OWNER: "owner",
}

_WORKSPACE_NAME = re.compile(r"^workspaces/([A-Za-z0-9_-]{1,64})(?:/|$)")


def workspace_id_from_name(name: str) -> str | None:
    """The workspace id of a resource name such as ``workspaces/w1/apiKeys/k1``."""
    match = _WORKSPACE_NAME.match(name)
    return match.group(1) if match else None


def rule_of(method: MethodDescriptor) -> AccessRule | None:
    """The method's access rule, or None when the contract forgot it (a test forbids that)."""
    options = method.GetOptions()
    if not options.HasExtension(access_pb2.rule):
        return None
    return options.Extensions[access_pb2.rule]


@dataclass(frozen=True, slots=True)
class HttpBinding:
    """One HTTP route of an RPC, from its ``google.api.http`` annotation."""

    verb: str
    template: str
    body: str


@dataclass(frozen=True, slots=True)
class RpcInfo:
    """An RPC with everything the runtime needs to know about it."""

    service: ServiceDescriptor
    method: MethodDescriptor
    rule: AccessRule | None
    http: tuple[HttpBinding, ...]

    @property
    def full_method(self) -> str:
        """The gRPC path, ``/railguard.auth.v1.AuthService/Login``."""
        return f"/{self.service.full_name}/{self.method.name}"

    @property
    def operation_id(self) -> str:
        """``AuthService.Login``: the OpenAPI operationId."""
        return f"{self.service.name}.{self.method.name}"


def _bindings(rule: http_pb2.HttpRule) -> Iterator[HttpBinding]:
    pattern = rule.WhichOneof("pattern")
    if pattern and pattern != "custom":
        yield HttpBinding(pattern.upper(), getattr(rule, pattern), rule.body)
    for extra in rule.additional_bindings:
        yield from _bindings(extra)


def describe_services(modules: Iterable[ModuleType]) -> list[RpcInfo]:
    """Every RPC of every service defined in the given generated ``*_pb2`` modules."""
    infos: list[RpcInfo] = []
    for module in modules:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                http: tuple[HttpBinding, ...] = ()
                if options.HasExtension(annotations_pb2.http):
                    http = tuple(_bindings(options.Extensions[annotations_pb2.http]))
                infos.append(RpcInfo(service, method, rule_of(method), http))
    return infos
