"""Use cases of the workspaces service: fetch → check → act → commit, primitives in and out.

The actor's role is always read from this service's own tables inside the transaction, so a
role change or removal takes effect on the very next request. Every successful mutation records
exactly one audit event in this service's outbox in the same transaction; the relay appends it
to the workspace's hash chain (see docs/audit.md).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import datetime as dt
import re
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from servicekit import ports
from servicekit.audit import AuditEvent, AuditOrigin, format_time
from servicekit.clock import Clock
from servicekit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from servicekit.lifecycle import LifecycleEvent, LifecycleState
from servicekit.pagination import encode_token, page_request

from workspaces_service.domain import (
    Member,
    Plan,
    Role,
    Workspace,
    check_can_assign,
    check_can_remove,
    validate_display_name,
    validate_retention,
)
from workspaces_service.domain.audit_log import AuditEntry, ChainHead, ChainVerifier, chain_entry

_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
UPDATABLE_FIELDS = frozenset(
    {"display_name", "plan", "mfa_required", "retention_days", "verified_email_required"}
)
MAX_APPEND_BATCH = 500
_VERIFY_CHUNK = 500
_STREAM_CHUNK = 100


class WorkspaceRepo(Protocol):
    async def get(self, workspace_id: str, *, lock: bool = False) -> Workspace | None: ...
    async def get_with_role(
        self, workspace_id: str, user_id: str
    ) -> tuple[Workspace, Role] | None: ...
    async def get_with_optional_role(
        self, workspace_id: str, user_id: str
    ) -> tuple[Workspace, Role | None] | None: ...
    async def by_request_id(self, user_id: str, request_id: str) -> Workspace | None: ...
    async def add(self, ws: Workspace, created_by: str, request_id: str | None) -> None: ...
    async def save(self, ws: Workspace) -> None: ...
    async def list_for_user(
        self, user_id: str, after: str, limit: int, *, show_deleted: bool
    ) -> list[tuple[Workspace, Role]]: ...
    async def deleted_unpurged(self, after: str, limit: int) -> list[Workspace]: ...
    async def with_lifecycle(self, after: str, limit: int) -> list[Workspace]: ...


class MemberRepo(Protocol):
    async def get(self, workspace_id: str, user_id: str) -> Member | None: ...
    async def add(self, member: Member) -> None: ...
    async def set_role(self, workspace_id: str, user_id: str, role: Role) -> None: ...
    async def remove(self, workspace_id: str, user_id: str) -> None: ...
    async def remove_all(self, workspace_id: str) -> int: ...
    async def count_owners(self, workspace_id: str) -> int: ...
    async def list(self, workspace_id: str, after: str, limit: int) -> list[Member]: ...


class AuditLogRepo(Protocol):
    async def lock_head(self, workspace_id: str) -> ChainHead: ...
    async def existing_ids(self, event_ids: Sequence[str]) -> set[str]: ...
    async def append(self, entries: Sequence[AuditEntry], received_at: dt.datetime) -> None: ...
    async def newest_first(
        self, workspace_id: str, before: int, limit: int
    ) -> list[AuditEntry]: ...
    async def in_order(self, workspace_id: str, after: int, limit: int) -> list[AuditEntry]: ...


class Outbox(Protocol):
    async def record(self, event: AuditEvent) -> None: ...


class LifecycleOutbox(Protocol):
    """Queues a lifecycle event for every service that holds workspace data."""

    async def record(self, event: LifecycleEvent) -> None: ...


class UnitOfWork(ports.UnitOfWork, Protocol):
    """The workspaces use cases' transaction (``adapters.repository.WorkspacesUnitOfWork``)."""

    @property
    def workspaces(self) -> WorkspaceRepo: ...
    @property
    def members(self) -> MemberRepo: ...
    @property
    def audit_log(self) -> AuditLogRepo: ...
    @property
    def outbox(self) -> Outbox: ...
    @property
    def lifecycle(self) -> LifecycleOutbox: ...


class DirectoryUserLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def email(self) -> str: ...


class UserDirectory(Protocol):
    async def find_by_email(self, email: str) -> DirectoryUserLike | None: ...
    async def find_by_id(self, user_id: str) -> DirectoryUserLike | None: ...


@dataclass(frozen=True, slots=True)
class AccessView:
    """What the edge needs to authorise a request in a workspace."""

    workspace_exists: bool
    member: bool
    role: int
    deleted: bool
    mfa_required: bool
    plan: int
    verified_email_required: bool = False


@dataclass(frozen=True, slots=True)
class ChainReport:
    """The outcome of recomputing a workspace's audit chain."""

    ok: bool
    verified: int
    first_broken_sequence: int
    head: ChainHead


def parse_id(value: str, field: str) -> str:
    if not _ID.match(value):
        raise InvalidArgument.field(field, "is not a valid id", reason="INVALID_NAME")
    return value


def _not_found() -> NotFound:
    return NotFound("workspace not found", reason="WORKSPACE_NOT_FOUND")


def _no_origin() -> AuditOrigin:
    return AuditOrigin(actor="")


class WorkspacesService:
    def __init__(
        self,
        uow: Callable[[], UnitOfWork],
        clock: Clock,
        directory: UserDirectory,
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        *,
        origin: Callable[[], AuditOrigin] = _no_origin,
        after_commit: Callable[[], None] = lambda: None,
        stream_poll: float = 0.5,
        stream_recheck: float = 5.0,
        read_uow: Callable[[], UnitOfWork] | None = None,
    ) -> None:
        """``origin`` tells who acts and from where (request id, client IP) for audit events;
        ``after_commit`` is called once an audited change has committed (it wakes the relay).
        Audit streams poll the log every ``stream_poll`` seconds at most (an append in this
        process wakes them at once) and re-read the reader's role at least every
        ``stream_recheck`` seconds, and always before sending new events. ``read_uow`` (default
        ``uow``) opens the read-only units of work of the hot reads (GetWorkspace, ResolveAccess):
        one statement each, no transaction around it."""
        self._uow, self._clock, self._directory, self._new_id = uow, clock, directory, new_id
        self._read_uow = read_uow or uow
        self._origin, self._after_commit = origin, after_commit
        self._stream_poll, self._stream_recheck = stream_poll, stream_recheck
        # replaced on every append: a stream holds the one current when it last read the log
        self._appended = asyncio.Event()

    async def _audit(
        self,
        uow: UnitOfWork,
        actor_id: str,
        ws_id: str,
        action: str,
        target: str,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        event = self._origin().event(
            on_behalf_of=f"user:{actor_id}",
            workspace_id=ws_id,
            action=action,
            target=target,
            time=self._clock.now(),
            metadata=metadata,
        )
        await uow.outbox.record(event)

    async def _lifecycle(self, uow: UnitOfWork, ws: Workspace, state: LifecycleState) -> None:
        """Tell the other services, through their outboxes, in this change's transaction."""
        await uow.lifecycle.record(
            LifecycleEvent.new(ws.id, state, ws.lifecycle_version, ws.updated_at)
        )

    async def _actor(self, uow: UnitOfWork, ws_id: str, actor_id: str) -> Member:
        member = await uow.members.get(ws_id, actor_id)
        if member is None:
            raise _not_found()  # not a member ≡ no such workspace
        return member

    async def _live(self, uow: UnitOfWork, ws_id: str, *, lock: bool = False) -> Workspace:
        ws = await uow.workspaces.get(ws_id, lock=lock)
        if ws is None:
            raise _not_found()
        if ws.deleted:
            # the edge's answer for the same state (docs/architecture.md, "Deleted workspaces"),
            # so a request decided here (an edge's view up to a second old) reads the same
            raise NotFound("the workspace is deleted", reason="WORKSPACE_DELETED")
        return ws

    async def create(
        self,
        actor_id: str,
        display_name: str,
        mfa_required: bool,
        retention_days: int,
        request_id: str,
    ) -> tuple[Workspace, Role]:
        name = validate_display_name(display_name, "workspace.display_name")
        retention = validate_retention(retention_days, "workspace.retention_days")
        if request_id and not _ID.match(request_id):
            raise InvalidArgument.field(
                "request_id", "must be 1-64 of [A-Za-z0-9_-]", reason="INVALID_REQUEST_ID"
            )
        user = await self._directory.find_by_id(actor_id)
        async with self._uow() as uow:
            if request_id:
                existing = await uow.workspaces.by_request_id(actor_id, request_id)
                if existing is not None:
                    return existing, Role.OWNER
            now = self._clock.now()
            ws = Workspace(self._new_id(), name, Plan.FREE, mfa_required, retention, now, now)
            await uow.workspaces.add(ws, actor_id, request_id or None)
            await uow.members.add(
                Member(ws.id, actor_id, user.email if user else "", Role.OWNER, now)
            )
            await self._audit(
                uow,
                actor_id,
                ws.id,
                "workspace.create",
                f"workspaces/{ws.id}",
                {"retention_days": str(retention), "mfa_required": str(mfa_required).lower()},
            )
            await uow.commit()
        self._after_commit()
        return ws, Role.OWNER

    async def get(self, actor_id: str, ws_id: str) -> tuple[Workspace, Role]:
        async with self._read_uow() as uow:
            found = await uow.workspaces.get_with_role(ws_id, actor_id)
        if found is None:
            raise _not_found()  # not a member ≡ no such workspace
        return found

    async def list(
        self, actor_id: str, page_size: int, page_token: str, show_deleted: bool
    ) -> tuple[list[tuple[Workspace, Role]], str]:
        query = f"workspaces:{actor_id}:{show_deleted}"
        page = page_request(page_size, page_token, query)
        async with self._uow() as uow:
            rows = await uow.workspaces.list_for_user(
                actor_id, page.cursor, page.size + 1, show_deleted=show_deleted
            )
        # deleted workspaces are listed only to their Owners
        rows = [(ws, role) for ws, role in rows if not ws.deleted or role is Role.OWNER]
        more = len(rows) > page.size
        rows = rows[: page.size]
        return rows, encode_token(rows[-1][0].id, query) if more and rows else ""

    async def update(
        self, actor_id: str, ws_id: str, changes: Mapping[str, object]
    ) -> tuple[Workspace, Role]:
        unknown = set(changes) - UPDATABLE_FIELDS
        if unknown:
            raise InvalidArgument.field(
                "update_mask",
                f"cannot update {', '.join(sorted(unknown))}",
                reason="INVALID_UPDATE_MASK",
            )
        async with self._uow() as uow:
            ws = await self._live(uow, ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            if actor.role < Role.ADMIN:
                raise PermissionDenied(
                    "your role does not allow this action", reason="ROLE_TOO_LOW"
                )
            if "plan" in changes:
                if actor.role is not Role.OWNER:
                    raise PermissionDenied(
                        "only an Owner changes the plan", reason="OWNER_REQUIRED"
                    )
                plan = int(changes["plan"])  # type: ignore[call-overload]
                if plan not in {p.value for p in Plan}:
                    raise InvalidArgument.field(
                        "workspace.plan", "is not a plan", reason="INVALID_PLAN"
                    )
                ws.plan = Plan(plan)
            if "display_name" in changes:
                ws.display_name = validate_display_name(
                    str(changes["display_name"]), "workspace.display_name"
                )
            if "retention_days" in changes:
                days = int(changes["retention_days"])  # type: ignore[call-overload]
                if days == 0:
                    raise InvalidArgument.field(
                        "workspace.retention_days", "must be 1 to 365", reason="INVALID_RETENTION"
                    )
                ws.retention_days = validate_retention(days, "workspace.retention_days")
            if "mfa_required" in changes:
                ws.mfa_required = bool(changes["mfa_required"])
            if "verified_email_required" in changes:
                ws.verified_email_required = bool(changes["verified_email_required"])
            ws.updated_at = self._clock.now()
            await uow.workspaces.save(ws)
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "workspace.update",
                f"workspaces/{ws_id}",
                {"fields": ",".join(sorted(changes))},
            )
            await uow.commit()
        self._after_commit()
        return ws, actor.role

    async def delete(self, actor_id: str, ws_id: str) -> Workspace:
        async with self._uow() as uow:
            ws = await uow.workspaces.get(ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            if ws is None:
                raise _not_found()
            if actor.role is not Role.OWNER:
                raise PermissionDenied("only an Owner deletes a workspace", reason="OWNER_REQUIRED")
            ws.delete(self._clock.now())
            await uow.workspaces.save(ws)
            await self._lifecycle(uow, ws, LifecycleState.DELETED)
            purge_at = ws.purge_at
            assert purge_at is not None
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "workspace.delete",
                f"workspaces/{ws_id}",
                {"purge_time": format_time(purge_at)},
            )
            await uow.commit()
        self._after_commit()
        return ws

    async def undelete(self, actor_id: str, ws_id: str) -> Workspace:
        async with self._uow() as uow:
            ws = await uow.workspaces.get(ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            if ws is None:
                raise _not_found()
            if actor.role is not Role.OWNER:
                raise PermissionDenied(
                    "only an Owner restores a workspace", reason="OWNER_REQUIRED"
                )
            ws.undelete(self._clock.now())
            await uow.workspaces.save(ws)
            await self._lifecycle(uow, ws, LifecycleState.ACTIVE)
            await self._audit(uow, actor_id, ws_id, "workspace.undelete", f"workspaces/{ws_id}")
            await uow.commit()
        self._after_commit()
        return ws

    async def list_members(
        self, actor_id: str, ws_id: str, page_size: int, page_token: str
    ) -> tuple[builtins.list[Member], str]:
        query = f"members:{ws_id}"
        page = page_request(page_size, page_token, query)
        async with self._uow() as uow:
            await self._live(uow, ws_id)
            await self._actor(uow, ws_id, actor_id)
            members = await uow.members.list(ws_id, page.cursor, page.size + 1)
        more = len(members) > page.size
        members = members[: page.size]
        return members, encode_token(members[-1].user_id, query) if more and members else ""

    async def add_member(self, actor_id: str, ws_id: str, email: str, role: int) -> Member:
        email = email.strip().lower()
        if not _EMAIL.match(email):
            raise InvalidArgument.field(
                "member.email", "must be an email address", reason="INVALID_EMAIL"
            )
        new_role = _role(role, "member.role")
        user = await self._directory.find_by_email(email)
        async with self._uow() as uow:
            await self._live(uow, ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            check_can_assign(actor.role, None, new_role, await uow.members.count_owners(ws_id))
            if user is None:
                raise NotFound("no user has this email address", reason="USER_NOT_FOUND")
            if await uow.members.get(ws_id, user.id) is not None:
                raise AlreadyExists("the user is already a member", reason="MEMBER_EXISTS")
            member = Member(ws_id, user.id, user.email, new_role, self._clock.now())
            await uow.members.add(member)
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "member.add",
                _member_name(ws_id, user.id),
                {"role": new_role.name.lower()},
            )
            await uow.commit()
        self._after_commit()
        return member

    async def update_member(self, actor_id: str, ws_id: str, user_id: str, role: int) -> Member:
        new_role = _role(role, "member.role")
        async with self._uow() as uow:
            await self._live(uow, ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            target = await uow.members.get(ws_id, user_id)
            if target is None:
                raise NotFound("member not found", reason="MEMBER_NOT_FOUND")
            check_can_assign(
                actor.role, target.role, new_role, await uow.members.count_owners(ws_id)
            )
            await uow.members.set_role(ws_id, user_id, new_role)
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "member.update",
                _member_name(ws_id, user_id),
                {"role": new_role.name.lower(), "previous_role": target.role.name.lower()},
            )
            await uow.commit()
        self._after_commit()
        target.role = new_role
        return target

    async def remove_member(self, actor_id: str, ws_id: str, user_id: str) -> None:
        async with self._uow() as uow:
            await self._live(uow, ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            target = await uow.members.get(ws_id, user_id)
            if target is None:
                raise NotFound("member not found", reason="MEMBER_NOT_FOUND")
            owners = await uow.members.count_owners(ws_id)
            check_can_remove(actor.role, actor_id == user_id, target.role, owners)
            await uow.members.remove(ws_id, user_id)
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "member.remove",
                _member_name(ws_id, user_id),
                {"role": target.role.name.lower()},
            )
            await uow.commit()
        self._after_commit()

    async def transfer_ownership(
        self, actor_id: str, ws_id: str, new_owner_id: str
    ) -> tuple[Workspace, Role]:
        async with self._uow() as uow:
            ws = await self._live(uow, ws_id, lock=True)
            actor = await self._actor(uow, ws_id, actor_id)
            if actor.role is not Role.OWNER:
                raise PermissionDenied("only an Owner transfers ownership", reason="OWNER_REQUIRED")
            target = await uow.members.get(ws_id, new_owner_id)
            if target is None:
                raise NotFound("member not found", reason="MEMBER_NOT_FOUND")
            if new_owner_id == actor_id:
                raise FailedPrecondition("you are already the Owner", reason="ALREADY_OWNER")
            await uow.members.set_role(ws_id, new_owner_id, Role.OWNER)
            await uow.members.set_role(ws_id, actor_id, Role.ADMIN)
            await self._audit(
                uow,
                actor_id,
                ws_id,
                "workspace.transferOwnership",
                f"workspaces/{ws_id}",
                {
                    "new_owner": _member_name(ws_id, new_owner_id),
                    "previous_owner": _member_name(ws_id, actor_id),
                },
            )
            await uow.commit()
        self._after_commit()
        return ws, Role.ADMIN

    async def resolve_access(self, user_id: str, ws_id: str) -> AccessView:
        if not _ID.match(ws_id):
            return AccessView(False, False, 0, False, False, 0)
        async with self._read_uow() as uow:
            found = await uow.workspaces.get_with_optional_role(ws_id, user_id)
        if found is None or found[0].purged:
            return AccessView(False, False, 0, False, False, 0)
        ws, role = found
        return AccessView(
            workspace_exists=True,
            member=role is not None,
            role=int(role) if role is not None else 0,
            deleted=ws.deleted,
            mfa_required=ws.mfa_required,
            plan=int(ws.plan),
            verified_email_required=ws.verified_email_required,
        )

    # --- retention ------------------------------------------------------------------------

    async def purge_expired(self, now: dt.datetime, batch: int = 100) -> builtins.list[str]:
        """Purge every deleted workspace whose window ended by ``now``; the ids purged.

        Members are hard-deleted; the workspace row stays as a tombstone (id, name, creator,
        delete and purge times) so references to it stay valid, and its audit log is kept.
        Each workspace is purged in its own transaction, re-checked under its row lock so a
        concurrent restore wins or loses cleanly.
        """
        purged: builtins.list[str] = []
        after = ""
        while True:
            async with self._uow() as uow:
                candidates = await uow.workspaces.deleted_unpurged(after, batch)
            if not candidates:
                break
            after = candidates[-1].id
            for candidate in candidates:
                if candidate.purge_due(now) and await self._purge_one(candidate.id, now):
                    purged.append(candidate.id)
        if purged:
            self._after_commit()
        return purged

    async def _purge_one(self, ws_id: str, now: dt.datetime) -> bool:
        async with self._uow() as uow:
            ws = await uow.workspaces.get(ws_id, lock=True)
            if ws is None or ws.purged or not ws.purge_due(now) or ws.deleted_at is None:
                return False
            removed = await uow.members.remove_all(ws_id)
            ws.purge(now)
            await uow.workspaces.save(ws)
            await self._lifecycle(uow, ws, LifecycleState.PURGED)
            await uow.outbox.record(
                AuditEvent.new(
                    workspace_id=ws_id,
                    actor="system",
                    action="workspace.purge",
                    target=f"workspaces/{ws_id}",
                    time=now,
                    metadata={
                        "members_removed": str(removed),
                        "delete_time": format_time(ws.deleted_at),
                    },
                )
            )
            await uow.commit()
        return True

    async def resend_lifecycle(self, batch: int = 100) -> int:
        """Queue the current state of every workspace ever deleted, again; how many.

        For a receiver that missed events (its database restored from an old backup, say):
        receivers apply by version, so one that is current skips them and one that is behind
        catches up. Nothing else changes.
        """
        sent, after = 0, ""
        while True:
            async with self._uow() as uow:
                page = await uow.workspaces.with_lifecycle(after, batch)
                if not page:
                    break
                for ws in page:
                    await uow.lifecycle.record(
                        LifecycleEvent.new(
                            ws.id, _lifecycle_state(ws), ws.lifecycle_version, self._clock.now()
                        )
                    )
                await uow.commit()
            sent += len(page)
            after = page[-1].id
        if sent:
            self._after_commit()
        return sent

    # --- audit log ------------------------------------------------------------------------

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
        query = f"audit:{ws_id}"
        page = page_request(page_size, page_token, query)
        before = _sequence_cursor(page.cursor)
        async with self._uow() as uow:
            await self._audit_reader(uow, actor_id, ws_id)
            entries = await uow.audit_log.newest_first(ws_id, before, page.size + 1)
        more = len(entries) > page.size
        entries = entries[: page.size]
        return entries, encode_token(str(entries[-1].sequence), query) if more and entries else ""

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


def _lifecycle_state(ws: Workspace) -> LifecycleState:
    if ws.purged:
        return LifecycleState.PURGED
    return LifecycleState.DELETED if ws.deleted else LifecycleState.ACTIVE


def _member_name(ws_id: str, user_id: str) -> str:
    return f"workspaces/{ws_id}/members/{user_id}"


def _sequence_cursor(cursor: str) -> int:
    if not cursor:
        return 0
    if not cursor.isdigit():
        raise InvalidArgument.field(
            "page_token", "is not a valid page token", reason="INVALID_PAGE_TOKEN"
        )
    return int(cursor)


def _role(value: int, field: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidArgument.field(
            field, "must be ROLE_USER, ROLE_ADMIN or ROLE_OWNER", reason="INVALID_ROLE"
        ) from None
