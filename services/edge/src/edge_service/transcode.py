"""JSON ⇄ protobuf for one route: body, path variables and query parameters into the request.

Unknown fields, wrong types and malformed JSON are refused with the field named, never echoing
the offending value (it may be a password).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from railguard.access.v1 import access_pb2
from servicekit.errors import FieldViolation, InvalidArgument

from edge_service.routes import Route

__all__ = ["MAX_JSON_DEPTH", "HttpFacts", "build_request", "json_too_deep", "render_response"]

MAX_JSON_DEPTH = 32
"""Deeper nesting is refused before ``json.loads`` runs: its recursion, and protobuf's after it,
would otherwise meet a 20 KB body of ``[[[[…`` with a RecursionError."""
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_OPENERS = frozenset(b"[{")
_CLOSERS = frozenset(b"]}")
_NO_FIELD = re.compile(r'has no field named "([^"]+)"')
_BAD_FIELD = re.compile(r"Failed to parse (\w+) field")


def _violation(err: json_format.ParseError, prefix: str) -> InvalidArgument:
    text = str(err)
    unknown = _NO_FIELD.search(text)
    if unknown:
        field = f"{prefix}{unknown.group(1)}"
        return InvalidArgument(
            f"unknown field {field!r}",
            reason="UNKNOWN_FIELD",
            violations=[FieldViolation(field, "is not a known field")],
        )
    bad = _BAD_FIELD.findall(text)
    field = prefix + ".".join(bad) if bad else prefix.rstrip(".") or "body"
    return InvalidArgument(
        f"invalid value for {field!r}",
        reason="INVALID_FIELD",
        violations=[FieldViolation(field, "has the wrong type or an invalid value")],
    )


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``body`` nests arrays/objects deeper than ``limit``; one pass, no recursion."""
    depth = 0
    for byte in _JSON_STRING.sub(b"", body):
        if byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSERS:
            depth -= 1
    return False


def _field_by_path(message: Message, path: str) -> tuple[Message, FieldDescriptor]:
    parts = path.split(".")
    target = message
    for part in parts[:-1]:
        target = getattr(target, part)
    descriptor = cast(FieldDescriptor | None, target.DESCRIPTOR.fields_by_name.get(parts[-1]))
    if descriptor is None:
        raise InvalidArgument.field(path, "is not a known field", reason="UNKNOWN_FIELD")
    return target, descriptor


def _query_value(descriptor: FieldDescriptor, raw: str) -> Any:
    if descriptor.type == FieldDescriptor.TYPE_BOOL:
        if raw not in {"true", "false"}:
            raise InvalidArgument.field(
                descriptor.json_name, "must be true or false", reason="INVALID_FIELD"
            )
        return raw == "true"
    return raw


def _apply_query(message: Message, query: Mapping[str, list[str]]) -> None:
    fields: dict[str, FieldDescriptor] = {}
    for fd in cast(list[FieldDescriptor], message.DESCRIPTOR.fields):
        fields[fd.name] = fd
        fields[fd.json_name] = fd
    data: dict[str, Any] = {}
    for key, values in query.items():
        descriptor = fields.get(key)
        if descriptor is None or (
            descriptor.type == FieldDescriptor.TYPE_MESSAGE
            and getattr(descriptor.message_type, "full_name", "") != "google.protobuf.FieldMask"
        ):
            raise InvalidArgument.field(
                key, "is not a known query parameter", reason="UNKNOWN_FIELD"
            )
        converted = [_query_value(descriptor, v) for v in values]
        data[descriptor.name] = converted if descriptor.is_repeated else converted[-1]
    if data:
        try:
            json_format.ParseDict(data, message, ignore_unknown_fields=False)
        except json_format.ParseError as err:
            raise _violation(err, "") from None


@dataclass(frozen=True, slots=True)
class HttpFacts:
    """What the edge observed of the HTTP request, for fields bound with ``(railguard.access.v1.source)``."""

    headers: Mapping[str, str]
    content_type: str = ""
    body_size: int = 0


_NO_FACTS = HttpFacts({})


@lru_cache(maxsize=256)
def _sourced_fields(
    descriptor: Descriptor,
) -> tuple[tuple[FieldDescriptor, access_pb2.FieldSource], ...]:
    out = []
    for field in cast(list[FieldDescriptor], descriptor.fields):
        options = field.GetOptions()
        if options.HasExtension(access_pb2.source):
            out.append((field, options.Extensions[access_pb2.source]))
    return tuple(out)


def _apply_sources(message: Message, facts: HttpFacts) -> None:
    """Fill header- and request-bound fields; refuse them anywhere else (a URL must never carry a token)."""
    for field, source in _sourced_fields(message.DESCRIPTOR):
        if getattr(message, field.name):
            where = (
                f"is sent only in the {source.header} request header, never in the URL or the body"
                if source.header
                else "is read by the edge from the request itself and is never sent as a field"
            )
            raise InvalidArgument.field(field.json_name, where, reason="FIELD_NOT_ALLOWED_HERE")
        if source.header:
            setattr(message, field.name, facts.headers.get(source.header.lower(), ""))
        elif source.request_property == access_pb2.REQUEST_PROPERTY_CONTENT_TYPE:
            setattr(message, field.name, facts.content_type)
        elif source.request_property == access_pb2.REQUEST_PROPERTY_BODY_SIZE:
            setattr(message, field.name, facts.body_size)


def build_request(
    route: Route,
    path_params: Mapping[str, str],
    body: bytes,
    query: Mapping[str, list[str]],
    facts: HttpFacts = _NO_FACTS,
) -> Message:
    """The RPC's request message for an HTTP request."""
    message_class = _message_class(route.info.method.input_type)
    message = message_class()
    body_field = route.binding.body
    if body_field:
        if body.strip():
            if json_too_deep(body):
                raise InvalidArgument(
                    f"the request body nests deeper than {MAX_JSON_DEPTH} levels",
                    reason="MALFORMED_JSON",
                )
            try:
                data = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                raise InvalidArgument(
                    "the request body is not valid JSON", reason="MALFORMED_JSON"
                ) from None
            if not isinstance(data, dict):
                raise InvalidArgument(
                    "the request body must be a JSON object", reason="MALFORMED_JSON"
                )
            if body_field == "*":
                target, prefix = message, ""
            else:
                target, descriptor = _field_by_path(message, body_field)
                target, prefix = getattr(target, descriptor.name), body_field + "."
            try:
                json_format.ParseDict(data, target, ignore_unknown_fields=False)
            except json_format.ParseError as err:
                raise _violation(err, prefix) from None
    elif body.strip():
        raise InvalidArgument("this method takes no request body", reason="UNEXPECTED_BODY")
    if body_field != "*":
        _apply_query(message, query)
    elif query:
        raise InvalidArgument.field(
            next(iter(query)), "is not a known query parameter", reason="UNKNOWN_FIELD"
        )
    _apply_sources(message, facts)
    for path, value in path_params.items():
        target, descriptor = _field_by_path(message, path)
        setattr(target, descriptor.name, value)
    return message


def render_response(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=False)


_CLASSES: dict[str, type[Message]] = {}


def _message_class(descriptor: Descriptor) -> type[Message]:
    cls = _CLASSES.get(descriptor.full_name)
    if cls is None:
        cls = message_factory.GetMessageClass(descriptor)
        _CLASSES[descriptor.full_name] = cls
    return cls
