"""Audit events: recorded in a service's own outbox inside the change's transaction, then relayed.

A use case builds an :class:`AuditEvent` (metadata is checked against a denylist of secret-like
key names and a size cap) and calls ``await outbox.record(session, event)`` before it commits,
so the event exists exactly when the change does. An :class:`AuditRelay` task reads unsent
outbox rows in order, hands them in batches to an :class:`AuditSink` (normally the workspaces
service's internal ``AppendAuditEvents`` RPC) and marks them sent. The sink is idempotent by
event id, so a relay that crashes between sending and marking just sends the batch again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import json
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import grpc
from railguard.workspaces.v1 import workspaces_service_pb2 as ws_pb
from railguard.workspaces.v1 import workspaces_service_pb2_grpc as ws_grpc
from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.clients import call
from servicekit.clock import Clock, SystemClock
from servicekit.context import current
from servicekit.db import UtcDateTime
from servicekit.errors import RailguardError
from servicekit.failures import unavailable_from
from servicekit.settings import Settings

__all__ = [
    "MAX_METADATA_ENTRIES",
    "AuditEvent",
    "AuditMetadataError",
    "AuditOrigin",
    "AuditOutbox",
    "AuditRelay",
    "OutboxRelay",
    "OutboxSink",
    "OutboxSource",
    "relay_now",
    "AuditSink",
    "GrpcAuditSink",
    "Outcome",
    "audit_outbox_columns",
    "check_metadata",
    "event_from_proto",
    "event_to_proto",
    "origin_from_context",
]

_log = logging.getLogger("servicekit.audit")

MAX_METADATA_ENTRIES = 16
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 256
MAX_METADATA_BYTES = 2048
_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_ACTION = re.compile(r"^[a-z][A-Za-z0-9_]*(\.[a-z][A-Za-z0-9_]*)+$")
# A key containing one of these words, or with one of the tokens below between underscores, is
# refused: its value is, or may be, a secret. ``key`` is refused only as the last token, so that
# ``api_key_id`` passes while ``api_key`` and ``signing_key`` do not.
_DENIED_SUBSTRINGS = ("password", "passwd", "secret", "credential", "plaintext", "ciphertext")
_DENIED_TOKENS = frozenset(
    {
        "pwd",
        "token",
        "tokens",
        "code",
        "codes",
        "pin",
        "otp",
        "totp",
        "private",
        "pepper",
        "cookie",
        "authorization",
        "bearer",
        "jwt",
        "hash",
        "salt",
        "signature",
        "apikey",
    }
)
# Values that look like Railguard secrets whatever their key: API keys, JWTs, Vault ciphertext.
_SECRET_VALUE = re.compile(r"rg_(live|test)_|eyJ[A-Za-z0-9_-]{8,}\.|vault:v\d+:")


class AuditMetadataError(ValueError):
    """An event's metadata would carry a secret-like or oversized value (a programming error)."""


class Outcome(enum.StrEnum):
    SUCCESS = "success"
    DENIED = "denied"
    FAILURE = "failure"


def check_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Return ``metadata`` as a plain dict, or raise :class:`AuditMetadataError`."""
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise AuditMetadataError(f"at most {MAX_METADATA_ENTRIES} metadata entries")
    total = 0
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise AuditMetadataError("metadata keys and values are strings")
        if not _KEY.match(key) or len(key) > MAX_METADATA_KEY:
            raise AuditMetadataError(f"metadata key {key[:64]!r} is not snake_case")
        tokens = key.split("_")
        if (
            any(word in key for word in _DENIED_SUBSTRINGS)
            or _DENIED_TOKENS.intersection(tokens)
            or tokens[-1] == "key"
        ):
            raise AuditMetadataError(f"metadata key {key!r} may name a secret")
        if len(value) > MAX_METADATA_VALUE:
            raise AuditMetadataError(f"metadata value of {key!r} is too long")
        if _SECRET_VALUE.search(value):
            raise AuditMetadataError(f"metadata value of {key!r} looks like a secret")
        total += len(key.encode()) + len(value.encode())
    if total > MAX_METADATA_BYTES:
        raise AuditMetadataError(f"metadata is larger than {MAX_METADATA_BYTES} bytes")
    return dict(metadata)


def _utc_micro(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(dt.UTC)


def format_time(value: dt.datetime) -> str:
    """The one textual form of an event time (hashed, so it must never vary)."""
    return _utc_micro(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """Who did what to which resource, when, from where, and how it ended."""

    id: str
    workspace_id: str
    actor: str
    action: str
    target: str
    outcome: Outcome
    request_id: str
    client_ip: str
    time: dt.datetime
    metadata: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        uuid.UUID(self.id)
        if not _ACTION.match(self.action) or len(self.action) > 64:
            raise AuditMetadataError(f"action {self.action[:64]!r} is not noun.verb")
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        object.__setattr__(self, "time", _utc_micro(self.time))
        object.__setattr__(self, "metadata", check_metadata(self.metadata))

    @classmethod
    def new(
        cls,
        *,
        workspace_id: str,
        actor: str,
        action: str,
        target: str,
        time: dt.datetime,
        outcome: Outcome = Outcome.SUCCESS,
        request_id: str = "",
        client_ip: str = "",
        metadata: Mapping[str, str] | None = None,
    ) -> AuditEvent:
        """A new event with a fresh random id."""
        return cls(
            str(uuid.uuid4()),
            workspace_id,
            actor,
            action,
            target,
            outcome,
            request_id,
            client_ip,
            time,
            dict(metadata or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "workspace_id": self.workspace_id,
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "outcome": self.outcome.value,
            "request_id": self.request_id,
            "client_ip": self.client_ip,
            "time": format_time(self.time),
            "metadata": dict(sorted(self.metadata.items())),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEvent:
        return cls(
            id=str(data["id"]),
            workspace_id=str(data["workspace_id"]),
            actor=str(data["actor"]),
            action=str(data["action"]),
            target=str(data["target"]),
            outcome=Outcome(data["outcome"]),
            request_id=str(data["request_id"]),
            client_ip=str(data["client_ip"]),
            time=parse_time(str(data["time"])),
            metadata={str(k): str(v) for k, v in dict(data["metadata"]).items()},
        )

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, UTF-8."""
        return canonical_json(self.to_dict())


def canonical_json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class AuditOrigin:
    """Who is acting and from where, as known to the call being served."""

    actor: str = "system"
    request_id: str = ""
    client_ip: str = ""


def origin_from_context() -> AuditOrigin:
    """The origin of the RPC being served: API key, else user, else the calling service."""
    call_ctx = current()
    principal = call_ctx.principal
    if principal.api_key_id:
        actor = f"apiKey:{principal.api_key_id}"
    elif principal.user_id:
        actor = f"user:{principal.user_id}"
    elif call_ctx.caller:
        actor = f"service:{call_ctx.caller}"
    else:
        actor = "system"
    return AuditOrigin(actor, call_ctx.request_id if call_ctx.method else "", principal.client_ip)


# --- the outbox -------------------------------------------------------------------------------


def audit_outbox_columns() -> list[Column[Any]]:
    """The outbox's columns, for a service's table definition and its Alembic migration alike."""
    return [
        Column(
            "seq",
            BigInteger().with_variant(Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("payload", Text, nullable=False),
        Column("created_at", UtcDateTime(), nullable=False),
        Column("sent_at", UtcDateTime(), nullable=True),
    ]


class AuditOutbox:
    """A service's ``<service>_audit_outbox`` table and the statements on it."""

    def __init__(self, table: Table) -> None:
        self.table = table

    @classmethod
    def define(cls, service: str, metadata: MetaData) -> AuditOutbox:
        """Declare ``<service>_audit_outbox`` on the service's own metadata."""
        name = f"{service}_audit_outbox"
        table = Table(
            name,
            metadata,
            *audit_outbox_columns(),
            Index(f"ix_{name}_unsent", "sent_at", "seq"),
        )
        return cls(table)

    async def record(self, session: AsyncSession, event: AuditEvent) -> None:
        """Insert the event in the caller's transaction: it commits or rolls back with the change."""
        await session.execute(
            self.table.insert().values(
                event_id=event.id, payload=event.to_json(), created_at=event.time, sent_at=None
            )
        )

    async def unsent(self, session: AsyncSession, limit: int) -> list[AuditEvent]:
        stmt = (
            select(self.table.c.payload)
            .where(self.table.c.sent_at.is_(None))
            .order_by(self.table.c.seq)
            .limit(limit)
        )
        rows = (await session.execute(stmt)).scalars().all()
        return [AuditEvent.from_dict(json.loads(payload)) for payload in rows]

    async def mark_sent(self, session: AsyncSession, ids: Sequence[str], now: dt.datetime) -> None:
        await session.execute(
            update(self.table).where(self.table.c.event_id.in_(list(ids))).values(sent_at=now)
        )


# --- the relay --------------------------------------------------------------------------------


class AuditSink(Protocol):
    """Where relayed events go; must be idempotent by event id."""

    async def append(self, events: Sequence[AuditEvent]) -> None: ...


def event_to_proto(event: AuditEvent) -> ws_pb.AuditEvent:
    msg = ws_pb.AuditEvent(
        id=event.id,
        workspace_id=event.workspace_id,
        actor=event.actor,
        action=event.action,
        target=event.target,
        outcome=_OUTCOME_TO_PB[event.outcome],
        request_id=event.request_id,
        client_ip=event.client_ip,
        metadata=dict(event.metadata),
    )
    msg.event_time.FromDatetime(event.time)
    return msg


def event_from_proto(msg: ws_pb.AuditEvent) -> AuditEvent:
    """The event a message carries; ValueError (or AuditMetadataError) when it is malformed."""
    outcome = _OUTCOME_FROM_PB.get(msg.outcome)
    if outcome is None:
        raise ValueError("outcome is not set")
    if not msg.HasField("event_time"):
        raise ValueError("event_time is not set")
    return AuditEvent(
        id=msg.id,
        workspace_id=msg.workspace_id,
        actor=msg.actor,
        action=msg.action,
        target=msg.target,
        outcome=outcome,
        request_id=msg.request_id,
        client_ip=msg.client_ip,
        time=msg.event_time.ToDatetime(tzinfo=dt.UTC),
        metadata=dict(msg.metadata),
    )


_OUTCOME_TO_PB = {
    Outcome.SUCCESS: ws_pb.AUDIT_OUTCOME_SUCCESS,
    Outcome.DENIED: ws_pb.AUDIT_OUTCOME_DENIED,
    Outcome.FAILURE: ws_pb.AUDIT_OUTCOME_FAILURE,
}
_OUTCOME_FROM_PB = {v: k for k, v in _OUTCOME_TO_PB.items()}


class GrpcAuditSink:
    """Sends events to the workspaces service's internal ``AppendAuditEvents`` RPC over mTLS."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout: float = 10.0) -> None:
        self._stub = ws_grpc.WorkspacesServiceStub(channel)
        self._timeout = timeout

    async def append(self, events: Sequence[AuditEvent]) -> None:
        request = ws_pb.AppendAuditEventsRequest(events=[event_to_proto(e) for e in events])
        await call(self._stub.AppendAuditEvents, request, timeout=self._timeout)


class OutboxItem(Protocol):
    """Something an outbox holds: it is marked sent by its id."""

    @property
    def id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=OutboxItem)
ItemT_contra = TypeVar("ItemT_contra", bound=OutboxItem, contravariant=True)


class OutboxSource(Protocol[ItemT]):
    """An outbox the relay drains (:class:`AuditOutbox`, ``servicekit.mail.MailOutbox``)."""

    async def unsent(self, session: AsyncSession, limit: int) -> list[ItemT]: ...

    async def mark_sent(
        self, session: AsyncSession, ids: Sequence[str], now: dt.datetime
    ) -> None: ...


class OutboxSink(Protocol[ItemT_contra]):
    """Where a relay hands its items (:class:`AuditSink` for events, a mail sender for mails)."""

    async def append(self, events: Sequence[ItemT_contra]) -> None: ...


class OutboxRelay(Generic[ItemT]):
    """A background task that drains an outbox into a sink, in order, at least once.

    :class:`AuditRelay` relays audit events; ``servicekit.mail`` relays mails with the same
    mechanism: any :class:`OutboxSource` and :class:`OutboxSink` of one item type will do;
    ``name`` names the task and its log lines.

    ``start()`` from the composition root and put ``stop`` in ``Wiring.on_stop``. ``poke()``
    wakes it right after a commit; otherwise it polls every ``interval`` seconds. Several
    replicas may relay the same outbox: a batch sent twice is harmless because the sink skips
    event ids it already holds.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: OutboxSource[ItemT],
        sink: OutboxSink[ItemT],
        *,
        clock: Clock | None = None,
        batch_size: int = 100,
        interval: float = 1.0,
        max_backoff: float = 30.0,
        name: str = "audit-relay",
    ) -> None:
        self._sessions, self._outbox, self._sink, self._name = sessions, outbox, sink, name
        self._clock = clock or SystemClock()
        self._batch_size, self._interval, self._max_backoff = batch_size, interval, max_backoff
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> int:
        """Send one batch of unsent events and mark them sent; the number sent."""
        async with self._sessions() as session:
            events = await self._outbox.unsent(session, self._batch_size)
            await session.rollback()
        if not events:
            return 0
        await self._sink.append(events)
        async with self._sessions() as session:
            await self._outbox.mark_sent(session, [e.id for e in events], self._clock.now())
            await session.commit()
        return len(events)

    async def drain(self) -> int:
        """Relay until the outbox is empty; the number sent."""
        total = 0
        while sent := await self.run_once():
            total += sent
        return total

    def poke(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def stop(self, final_drain: float = 2.0) -> None:
        """Stop the loop, then ship what is queued for at most ``final_drain`` seconds.

        Called after the server drained its in-flight calls, so their events are in the outbox.
        Whatever the sink does not take in time stays in the outbox (durable) for the next start
        or another replica's relay: nothing acknowledged is lost either way.
        """
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        try:
            await asyncio.wait_for(self.drain(), final_drain)
        except Exception:  # noqa: BLE001 - the rows wait in the outbox
            _log.warning("audit events left queued at shutdown; they are relayed on next start")

    async def _run(self) -> None:
        delay = self._interval
        while True:
            self._wake.clear()
            try:
                await self.drain()
                delay = self._interval
            except Exception as exc:  # noqa: BLE001 - a down sink must not kill the relay; rows wait
                # a known outage (sink or database down) is one line; anything else its traceback
                known = isinstance(exc, RailguardError) or unavailable_from(exc) is not None
                _log.warning("%s failed; retrying", self._name, exc_info=not known)
                delay = min(max(delay * 2, self._interval), self._max_backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)


class AuditRelay(OutboxRelay[AuditEvent]):
    """The relay of a service's audit outbox (see :class:`OutboxRelay`)."""


async def relay_now(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    outbox: AuditOutbox,
    clock: Clock | None = None,
) -> None:
    """Ship what a one-shot job (purge, say) wrote to the outbox, if the workspaces service answers.

    When it does not, the events stay queued for the running servers' relay: a job never fails
    because the audit log is briefly out of reach, and never loses an event either.
    """
    from servicekit.clients import open_channel  # a job opens its channel only when it needs it

    channel = None
    try:
        channel = open_channel(settings, settings.peers.workspaces)
        await AuditRelay(sessions, outbox, GrpcAuditSink(channel), clock=clock).drain()
    except Exception:  # noqa: BLE001 - the events wait in the outbox
        _log.warning("could not relay the job's audit events now; they stay queued")
    finally:
        if channel is not None:
            await channel.close()
