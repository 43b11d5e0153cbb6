"""The workspaces service's own audit sink: its relay appends in-process, not over the network."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from servicekit.audit import AuditEvent


class AuditAppender(Protocol):
    async def append_audit_events(
        self, events: Sequence[AuditEvent], source: str
    ) -> tuple[int, int]: ...


class LocalAuditSink:
    """An ``AuditSink`` that calls the append use case directly (same idempotent path as the RPC)."""

    def __init__(self, appender: AuditAppender, source: str = "workspaces") -> None:
        self._appender, self._source = appender, source

    async def append(self, events: Sequence[AuditEvent]) -> None:
        await self._appender.append_audit_events(events, self._source)
