"""The API key repository and the unit of work of the keys service."""

from __future__ import annotations

import builtins
import ipaddress
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from servicekit.audit import AuditEvent
from servicekit.db import SqlUnitOfWork, page_after
from servicekit.errors import Aborted
from servicekit.lifecycle import LifecycleEvent
from servicekit.outbox import OutboxRepository
from servicekit.rows import from_row
from sqlalchemy import Row, Table, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from keys_service.adapters.tables import AUDIT_OUTBOX, CHANGE_LOG, ApiKeyRow
from keys_service.domain import (
    ApiKey,
    IpAllowlist,
    KeyEnvironment,
    KeyHash,
    OriginAllowlist,
    ScopeSet,
)
from keys_service.ports import KeyListing

# The change feed's topics (servicekit.changefeed; docs/api-keys.md): a key changed (key: its
# id), a workspace's life changed here (key: the workspace id; every key of it).
TOPIC_API_KEY = "api_key"
TOPIC_WORKSPACE = "workspace"


async def record_workspace_change(session: AsyncSession, event: LifecycleEvent) -> None:
    """A lifecycle event was applied: the workspace's keys are to be verified again."""
    await CHANGE_LOG.record(session, TOPIC_WORKSPACE, event.workspace_id)


def _key(row: ApiKeyRow | Row[Any]) -> ApiKey:
    """From an ORM row or a Core row of the api_keys table (same names)."""
    previous = None
    if row.previous_digest is not None and row.previous_pepper_version is not None:
        previous = KeyHash(row.previous_pepper_version, row.previous_digest)
    current = None
    if row.secret_digest is not None:
        current = KeyHash(row.secret_pepper_version, row.secret_digest)
    return from_row(
        ApiKey,
        row,
        environment=KeyEnvironment(row.environment),
        secret_hash=current,
        scopes=ScopeSet(row.scopes),
        # stored entries were validated and normalised on the way in
        allowed_cidrs=IpAllowlist(ipaddress.ip_network(c) for c in row.allowed_cidrs),
        allowed_origins=OriginAllowlist(row.allowed_origins),
        previous_secret_hash=previous,
        previous_expires_at=row.previous_expires_at if previous else None,
        creator_aal=row.creator_aal or "aal1",
    )


# VerifyApiKey's lookup as a Core statement built once (no ORM loading or building per call)
_API_KEYS = ApiKeyRow.__table__
_DIGESTS: BindParameter[Any] = bindparam("digests", expanding=True)
_FIND_BY_DIGESTS = (
    select(_API_KEYS)
    .where(or_(_API_KEYS.c.secret_digest.in_(_DIGESTS), _API_KEYS.c.previous_digest.in_(_DIGESTS)))
    .limit(1)
)


def _write(row: ApiKeyRow, key: ApiKey) -> None:
    """Copy every mutable field of ``key`` onto ``row``."""
    row.name = key.name
    row.display_prefix = key.display_prefix
    if key.secret_hash is not None:
        row.secret_digest = key.secret_hash.digest
        row.secret_pepper_version = key.secret_hash.pepper_version
    else:  # purged: the digest is destroyed, the (non-secret) version number is kept
        row.secret_digest = None
    prev = key.previous_secret_hash
    row.previous_digest = prev.digest if prev else None
    row.previous_pepper_version = prev.pepper_version if prev else None
    row.previous_expires_at = key.previous_expires_at
    row.scopes = key.scopes.as_strings()
    row.allowed_cidrs = key.allowed_cidrs.as_strings()
    row.allowed_origins = key.allowed_origins.as_strings()
    row.updated_at = key.updated_at or key.created_at
    row.expires_at = key.expires_at
    row.revoked_at = key.revoked_at
    row.deleted_at = key.deleted_at
    row.rotated_at = key.rotated_at
    row.purged_at = key.purged_at
    row.created_by = key.created_by  # rotation re-binds a key to its rotator
    row.creator_aal = key.creator_aal


class ApiKeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, workspace_id: str, key_id: str, *, lock: bool = False) -> ApiKey | None:
        stmt = select(ApiKeyRow).where(
            ApiKeyRow.workspace_id == workspace_id, ApiKeyRow.id == key_id
        )
        if lock:
            stmt = stmt.with_for_update()
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _key(row) if row else None

    async def by_request_id(
        self, workspace_id: str, created_by: str, request_id: str
    ) -> ApiKey | None:
        stmt = select(ApiKeyRow).where(
            ApiKeyRow.workspace_id == workspace_id,
            ApiKeyRow.created_by == created_by,
            ApiKeyRow.request_id == request_id,
        )
        row = (await self.session.execute(stmt)).scalar_one_or_none()
        return _key(row) if row else None

    async def add(self, key: ApiKey, request_id: str | None) -> None:
        row = ApiKeyRow(
            id=key.id,
            workspace_id=key.workspace_id,
            environment=key.environment.value,
            created_by=key.created_by,
            request_id=request_id,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
        )
        _write(row, key)
        self.session.add(row)
        try:
            await self.session.flush()
        except IntegrityError:
            # the same request_id raced with itself; the other attempt owns the key
            raise Aborted(
                "a request with this request_id is in progress; retry",
                reason="REQUEST_IN_PROGRESS",
            ) from None

    async def save(self, key: ApiKey) -> None:
        stmt = select(ApiKeyRow).where(
            ApiKeyRow.workspace_id == key.workspace_id, ApiKeyRow.id == key.id
        )
        row = (await self.session.execute(stmt)).scalar_one()
        _write(row, key)
        await self.session.flush()
        # updated, revoked, rotated, deleted, undeleted or purged: every edge drops its cache
        await CHANGE_LOG.record(self.session, TOPIC_API_KEY, key.id)

    async def list(self, listing: KeyListing, after: str, limit: int) -> list[ApiKey]:
        stmt = page_after(
            select(ApiKeyRow).where(ApiKeyRow.workspace_id == listing.workspace_id),
            ApiKeyRow.id,
            after,
            limit,
        )
        if listing.created_by is not None:
            stmt = stmt.where(ApiKeyRow.created_by == listing.created_by)
        if not listing.show_deleted:
            stmt = stmt.where(ApiKeyRow.deleted_at.is_(None))
        else:
            stmt = stmt.where(ApiKeyRow.purged_at.is_(None))  # tombstones are never listed
        return [_key(r) for r in (await self.session.execute(stmt)).scalars()]

    async def deleted_unpurged(
        self, deleted_before: datetime, after: str, limit: int
    ) -> builtins.list[ApiKey]:
        """Keys deleted at or before ``deleted_before`` and not purged yet, in id order."""
        stmt = page_after(
            select(ApiKeyRow).where(
                ApiKeyRow.deleted_at.is_not(None),
                ApiKeyRow.deleted_at <= deleted_before,
                ApiKeyRow.purged_at.is_(None),
            ),
            ApiKeyRow.id,
            after,
            limit,
        )
        return [_key(r) for r in (await self.session.execute(stmt)).scalars()]

    async def find_by_digests(self, digests: Sequence[bytes]) -> ApiKey | None:
        """The key whose current or previous secret has one of ``digests``: one indexed query."""
        found = await self.session.execute(_FIND_BY_DIGESTS, {"digests": list(digests)})
        row = found.one_or_none()
        return _key(row) if row else None

    async def active_origin_lists(self, now: datetime) -> builtins.list[builtins.list[str]]:
        """The allowed origins of every key that is neither revoked, deleted nor expired."""
        stmt = select(ApiKeyRow.allowed_origins).where(
            ApiKeyRow.revoked_at.is_(None),
            ApiKeyRow.deleted_at.is_(None),
            ApiKeyRow.purged_at.is_(None),
            or_(ApiKeyRow.expires_at.is_(None), ApiKeyRow.expires_at > now),
        )
        return [
            list(origins) for origins in (await self.session.execute(stmt)).scalars() if origins
        ]

    async def rehash(self, key_id: str, old: KeyHash, new: KeyHash) -> None:
        """Move a key to the current pepper, unless a rotation changed its secret meanwhile."""
        await self.session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.id == key_id, ApiKeyRow.secret_digest == old.digest)
            .values(secret_digest=new.digest, secret_pepper_version=new.pepper_version)
        )
        # the stored digest changed: every replica's verification cache drops the key
        await CHANGE_LOG.record(self.session, TOPIC_API_KEY, key_id)

    async def touch_many(self, uses: Sequence[tuple[str, datetime]]) -> None:
        """``touch`` for a whole usage flush: one statement sent as one executemany."""
        if uses:
            await self.session.execute(
                _TOUCH_MANY, [{"touch_id": key_id, "touch_when": when} for key_id, when in uses]
            )


_TOUCHED_TABLE = cast("Table", ApiKeyRow.__table__)
_TOUCHED = _TOUCHED_TABLE.c
# Core (not ORM) UPDATE, so a parameter list is a plain executemany of one prepared statement.
_TOUCH_MANY = (
    update(_TOUCHED_TABLE)
    .where(
        _TOUCHED.id == bindparam("touch_id"),
        or_(_TOUCHED.last_used_at.is_(None), _TOUCHED.last_used_at < bindparam("touch_when")),
    )
    .values(last_used_at=bindparam("touch_when"))
)


class SqlKeysUnitOfWork(SqlUnitOfWork):
    """The keys use cases' ``KeysUnitOfWork`` on SQLAlchemy: one session, its repositories."""

    keys: ApiKeyRepository
    outbox: OutboxRepository[AuditEvent]

    def _bind(self, session: AsyncSession) -> None:
        self.keys = ApiKeyRepository(session)
        self.outbox = OutboxRepository(session, AUDIT_OUTBOX)
