"""The workspaces audit log over gRPC: the event's protobuf form and the sink other services use.

An adapter module: it loads grpc and the workspaces service's contract, which the pure event
(:mod:`servicekit.audit`) must not. :class:`GrpcAuditSink` is the ``AuditSink`` of the auth,
keys and credentials relays (the internal ``AppendAuditEvents`` RPC over mTLS); the workspaces
servicer maps the same messages back with :func:`event_from_proto`; :func:`relay_now` ships what
a one-shot job recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import grpc
from railguard.workspaces.v1 import workspaces_service_pb2 as ws_pb
from railguard.workspaces.v1 import workspaces_service_pb2_grpc as ws_grpc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from servicekit.audit import AuditEvent, Outcome
from servicekit.clients import call
from servicekit.clock import Clock
from servicekit.outbox import AuditOutbox, AuditRelay
from servicekit.settings import Settings
from servicekit.wire import enum_from, event_time

__all__ = ["GrpcAuditSink", "event_from_proto", "event_to_proto", "relay_now"]

_log = logging.getLogger("servicekit.audit")


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
    outcome = enum_from(_OUTCOME_FROM_PB, msg.outcome, "outcome")
    time = event_time(msg)
    return AuditEvent(
        id=msg.id,
        workspace_id=msg.workspace_id,
        actor=msg.actor,
        action=msg.action,
        target=msg.target,
        outcome=outcome,
        request_id=msg.request_id,
        client_ip=msg.client_ip,
        time=time,
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
