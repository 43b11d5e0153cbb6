"""The runtime every Railguard service shares: serve(), interceptors, errors, settings, db, TLS.

Import from here; the modules behind it are the implementation.
"""

from servicekit.access import RpcInfo, describe_services, role_at_least, workspace_id_from_name
from servicekit.audit import (
    AuditEvent,
    AuditMetadataError,
    AuditOrigin,
    AuditOutbox,
    AuditRelay,
    AuditSink,
    GrpcAuditSink,
    Outcome,
    origin_from_context,
)
from servicekit.clients import call, open_channel, outgoing_metadata
from servicekit.clock import Clock, SystemClock
from servicekit.context import CallContext, Principal, current
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
from servicekit.pagination import Page, decode_token, encode_token, page_request
from servicekit.runtime import Wiring, run_service
from servicekit.server import Registration, RunningServer, serve, start_server
from servicekit.settings import PeerAddresses, Settings, load_settings

__all__ = [
    "Aborted",
    "AlreadyExists",
    "AuditEvent",
    "AuditMetadataError",
    "AuditOrigin",
    "AuditOutbox",
    "AuditRelay",
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
