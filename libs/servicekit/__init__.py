"""The runtime every Railguard service shares: serve(), interceptors, errors, settings, db, TLS.

Import from here; the modules behind it are the implementation. Names resolve lazily (PEP 562),
so a process that needs only part of the runtime — the edge has no database — does not pay for
the rest: importing SQLAlchemy alone costs about 25 MB of resident memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from servicekit.exports import lazy_getattr

_EXPORTS: dict[str, str] = {
    "Aborted": "servicekit.errors",
    "AlreadyExists": "servicekit.errors",
    "AuditAction": "servicekit.audit",
    "AuditEvent": "servicekit.audit",
    "AuditMetadataError": "servicekit.audit",
    "AuditOrigin": "servicekit.audit",
    "AuditOutbox": "servicekit.outbox",
    "AuditRelay": "servicekit.outbox",
    "relay_now": "servicekit.audit_grpc",
    "AuditSink": "servicekit.audit",
    "Base": "servicekit.db",
    "CallContext": "servicekit.context",
    "Clock": "servicekit.clock",
    "FailedPrecondition": "servicekit.errors",
    "FieldViolation": "servicekit.errors",
    "GrpcAuditSink": "servicekit.audit_grpc",
    "InvalidArgument": "servicekit.errors",
    "NotFound": "servicekit.errors",
    "Outcome": "servicekit.audit",
    "OutboxRepository": "servicekit.outbox",
    "Page": "servicekit.pagination",
    "PeerAddresses": "servicekit.settings",
    "PermissionDenied": "servicekit.errors",
    "Principal": "servicekit.context",
    "RailguardError": "servicekit.errors",
    "Registration": "servicekit.server",
    "ResourceExhausted": "servicekit.errors",
    "RpcInfo": "servicekit.access",
    "RunningServer": "servicekit.server",
    "Settings": "servicekit.settings",
    "SqlUnitOfWork": "servicekit.db",
    "SystemClock": "servicekit.clock",
    "Unauthenticated": "servicekit.errors",
    "Unavailable": "servicekit.errors",
    "UtcDateTime": "servicekit.db",
    "Wiring": "servicekit.runtime",
    "call": "servicekit.clients",
    "configure_logging": "servicekit.logs",
    "create_engine": "servicekit.db",
    "current": "servicekit.context",
    "decode_token": "servicekit.pagination",
    "describe_services": "servicekit.access",
    "encode_token": "servicekit.pagination",
    "load_settings": "servicekit.settings",
    "open_channel": "servicekit.clients",
    "origin_from_context": "servicekit.context",
    "outgoing_metadata": "servicekit.clients",
    "page_request": "servicekit.pagination",
    "role_at_least": "servicekit.access",
    "run_service": "servicekit.runtime",
    "serve": "servicekit.server",
    "session_factory": "servicekit.db",
    "start_server": "servicekit.server",
    "upgrade": "servicekit.migrations",
    "workspace_id_from_name": "servicekit.access",
}


__getattr__ = lazy_getattr("servicekit", _EXPORTS, globals())


if TYPE_CHECKING:
    from servicekit.access import RpcInfo, describe_services, role_at_least, workspace_id_from_name
    from servicekit.audit import (
        AuditAction,
        AuditEvent,
        AuditMetadataError,
        AuditOrigin,
        AuditSink,
        Outcome,
    )
    from servicekit.audit_grpc import GrpcAuditSink, relay_now
    from servicekit.clients import call, open_channel, outgoing_metadata
    from servicekit.clock import Clock, SystemClock
    from servicekit.context import CallContext, Principal, current, origin_from_context
    from servicekit.db import Base, SqlUnitOfWork, UtcDateTime, create_engine, session_factory
    from servicekit.errors import (
        Aborted,
        AlreadyExists,
        FailedPrecondition,
        FieldViolation,
        InvalidArgument,
        NotFound,
        PermissionDenied,
        RailguardError,
        ResourceExhausted,
        Unauthenticated,
        Unavailable,
    )
    from servicekit.logs import configure_logging
    from servicekit.migrations import upgrade
    from servicekit.outbox import AuditOutbox, AuditRelay, OutboxRepository
    from servicekit.pagination import Page, decode_token, encode_token, page_request
    from servicekit.runtime import Wiring, run_service
    from servicekit.server import Registration, RunningServer, serve, start_server
    from servicekit.settings import PeerAddresses, Settings, load_settings

__all__ = [
    "Aborted",
    "AlreadyExists",
    "AuditAction",
    "AuditEvent",
    "AuditMetadataError",
    "AuditOrigin",
    "AuditOutbox",
    "AuditRelay",
    "relay_now",
    "AuditSink",
    "Base",
    "CallContext",
    "Clock",
    "FailedPrecondition",
    "FieldViolation",
    "GrpcAuditSink",
    "InvalidArgument",
    "NotFound",
    "Outcome",
    "OutboxRepository",
    "Page",
    "PeerAddresses",
    "PermissionDenied",
    "Principal",
    "RailguardError",
    "Registration",
    "ResourceExhausted",
    "RpcInfo",
    "RunningServer",
    "Settings",
    "SqlUnitOfWork",
    "SystemClock",
    "Unauthenticated",
    "Unavailable",
    "Wiring",
    "UtcDateTime",
    "call",
    "configure_logging",
    "create_engine",
    "current",
    "decode_token",
    "describe_services",
    "encode_token",
    "load_settings",
    "open_channel",
    "origin_from_context",
    "outgoing_metadata",
    "page_request",
    "role_at_least",
    "run_service",
    "serve",
    "session_factory",
    "start_server",
    "upgrade",
    "workspace_id_from_name",
]
