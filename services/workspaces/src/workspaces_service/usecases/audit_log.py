"""The audit log: appending relayed events to the hash chain, listing, streaming and verifying it."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

from servicekit.audit import AuditEvent
from servicekit.errors import InvalidArgument, PermissionDenied
from servicekit.pagination import fetch_page

from workspaces_service.domain import Role
from workspaces_service.domain.audit_log import AuditEntry, ChainVerifier, chain_entry
from workspaces_service.ports import UnitOfWork
from workspaces_service.usecases.common import (
    _ID,
    _STREAM_CHUNK,
    _VERIFY_CHUNK,
    MAX_APPEND_BATCH,
    ChainReport,
    _sequence_cursor,
)
from workspaces_service.usecases.core import WorkspacesCore

__all__ = ["AuditLog"]


class AuditLog(WorkspacesCore):
    """Append, list, stream and verify a workspace's audit chain."""

    async def append_audit_events(
        self, events: Sequence[AuditEvent], source: str
    ) -> tuple[int, int]:
        """Chain events onto their workspaces' logs; (appended, skipped as already stored).

        Heads are locked in workspace-id order, so two batches never deadlock.
        """
        if len(events) > MAX_APPEND_BATCH:
            raise InvalidArgument.field(
                "events", f"at most {MAX_APPEND_BATCH} per call", reason="TOO_MANY_AUDIT_EVENTS"
            )
        by_workspace: dict[str, list[AuditEvent]] = defaultdict(list)
        seen: set[str] = set()
        duplicates = 0
        for i, event in enumerate(events):
            if event.workspace_id and not _ID.match(event.workspace_id):
                raise InvalidArgument.field(
                    f"events[{i}].workspace_id", "is not a valid id", reason="INVALID_AUDIT_EVENT"
                )
            if event.id in seen:
                duplicates += 1
                continue
            seen.add(event.id)
            by_workspace[event.workspace_id].append(event)
        appended = 0
        async with self._uow() as uow:
            now = self._clock.now()
            for ws_id in sorted(by_workspace):
                head = await uow.audit_log.lock_head(ws_id)
                batch = by_workspace[ws_id]
                stored = await uow.audit_log.existing_ids([e.id for e in batch])
                entries: builtins.list[AuditEntry] = []
                prev_hash, sequence = head.hash, head.sequence
                for event in batch:
                    if event.id in stored:
                        duplicates += 1
                        continue
                    sequence += 1
                    entry = chain_entry(prev_hash, event, sequence, source)
                    entries.append(entry)
                    prev_hash = entry.hash
                await uow.audit_log.append(entries, now)
                appended += len(entries)
            await uow.commit()
        if appended:
            signal, self._appended = self._appended, asyncio.Event()
            signal.set()  # wake the audit streams of this process
        return appended, duplicates

    async def _audit_reader(self, uow: UnitOfWork, actor_id: str, ws_id: str) -> None:
        await self._live(uow, ws_id)
        actor = await self._actor(uow, ws_id, actor_id)
        if actor.role < Role.ADMIN:
            raise PermissionDenied(
                "only Admins and Owners read the audit log", reason="ROLE_TOO_LOW"
            )

    async def list_audit_events(
        self, actor_id: str, ws_id: str, page_size: int, page_token: str
    ) -> tuple[builtins.list[AuditEntry], str]:
        """Newest first: the page after the token holds the next older entries."""

        async def read(cursor: str, limit: int) -> builtins.list[AuditEntry]:
            before = _sequence_cursor(cursor)
            async with self._uow() as uow:
                await self._audit_reader(uow, actor_id, ws_id)
                return await uow.audit_log.newest_first(ws_id, before, limit)

        return await fetch_page(
            page_size, page_token, f"audit:{ws_id}", read, lambda entry: str(entry.sequence)
        )

    async def stream_audit_events(
        self, actor_id: str, ws_id: str, after: int
    ) -> AsyncIterator[AuditEntry]:
        """Entries after sequence ``after`` in order, then each new one, until the caller stops.

        New entries are noticed at once when appended by this process and within
        ``stream_poll`` seconds otherwise (other replicas). The reader's role is re-read from
        the tables before each batch is sent and at least every ``stream_recheck`` seconds, so a
        demoted or removed reader's stream ends with PERMISSION_DENIED / NOT_FOUND.
        """
        if after < 0:
            raise InvalidArgument.field(
                "after_sequence", "must not be negative", reason="INVALID_SEQUENCE"
            )
        checked = float("-inf")
        while True:
            signal = self._appended  # taken before the read, so no append is missed
            recheck = time.monotonic() - checked >= self._stream_recheck
            # shielded: a caller going away mid-read must not interrupt the transaction (the
            # driver's connection is then returned cleanly); the read is short and bounded
            entries = await asyncio.shield(self._stream_batch(actor_id, ws_id, after, recheck))
            if entries or recheck:
                checked = time.monotonic()
            for entry in entries:
                yield entry
                after = entry.sequence
            if len(entries) < _STREAM_CHUNK:
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._stream_poll):
                        await signal.wait()

    async def _stream_batch(
        self, actor_id: str, ws_id: str, after: int, recheck: bool
    ) -> builtins.list[AuditEntry]:
        async with self._uow() as uow:
            entries = await uow.audit_log.in_order(ws_id, after, _STREAM_CHUNK)
            if entries or recheck:
                await self._audit_reader(uow, actor_id, ws_id)
        return entries

    async def verify_audit_chain(self, actor_id: str, ws_id: str) -> ChainReport:
        """Recompute the whole chain under the head lock (appends to it wait meanwhile)."""
        async with self._uow() as uow:
            await self._audit_reader(uow, actor_id, ws_id)
            head = await uow.audit_log.lock_head(ws_id)
            verifier = ChainVerifier()
            after = 0
            while chunk := await uow.audit_log.in_order(ws_id, after, _VERIFY_CHUNK):
                if not verifier.feed(chunk) or chunk[-1].sequence >= head.sequence:
                    break
                after = chunk[-1].sequence
            if not verifier.broken_at:
                beyond = await uow.audit_log.in_order(ws_id, head.sequence, 1)
                if beyond:
                    verifier.broken_at = head.sequence + 1  # rows the head never committed to
            verifier.finish(head)
        return ChainReport(not verifier.broken_at, verifier.verified, verifier.broken_at, head)
