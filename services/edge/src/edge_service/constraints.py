"""Input constraints the edge enforces and the OpenAPI document states, written once.

Each constant is used by the code that checks it (the gateway, the services' pagination) and by
``openapi``, so the document cannot promise something the edge does not do.
"""

from __future__ import annotations

import re
from typing import Any

from servicekit.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "FIELD_CONSTRAINTS",
    "ID_SEGMENT",
    "ID_SEGMENT_PATTERN",
    "MAX_PAGE_SIZE",
    "REQUEST_ID",
    "REQUEST_ID_PATTERN",
    "field_constraints",
]

# one segment of a resource name (``workspaces/{segment}/apiKeys/{segment}``), checked on every
# path variable before anything else happens
ID_SEGMENT_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ID_SEGMENT = re.compile(ID_SEGMENT_PATTERN)

# a caller's X-Request-Id is kept end to end only when it has this shape; otherwise one is made
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
REQUEST_ID = re.compile(REQUEST_ID_PATTERN)

# Bounds the contracts state in their comments and the services enforce (each service's domain
# validation), as JSON Schema keywords; by field name, or by full field name for one message.
_PASSWORD = {"minLength": 12, "maxLength": 128}
FIELD_CONSTRAINTS: dict[str, dict[str, Any]] = {
    "display_name": {"maxLength": 100},
    "railguard.auth.v1.SignUpRequest.email": {"maxLength": 254},
    "railguard.auth.v1.SignUpRequest.password": _PASSWORD,
    "railguard.auth.v1.ChangePasswordRequest.new_password": _PASSWORD,
    "railguard.workspaces.v1.Workspace.retention_days": {"minimum": 0, "maximum": 365},
    "railguard.workspaces.v1.AuditEvent.metadata": {"maxProperties": 16},
}


def field_constraints(full_name: str) -> dict[str, Any]:
    """The stated bounds of a field (``package.Message.field``), or none."""
    name = full_name.rsplit(".", 1)[-1]
    return {**FIELD_CONSTRAINTS.get(name, {}), **FIELD_CONSTRAINTS.get(full_name, {})}
