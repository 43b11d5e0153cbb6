"""A relayed event message (audit, lifecycle) missing its enum or its time is malformed: a
ValueError for the receiver to refuse, never an event with a default outcome, state or time."""

import datetime as dt
import uuid

import pytest
from railguard.workspaces.v1 import lifecycle_pb2
from railguard.workspaces.v1 import workspaces_service_pb2 as ws_pb
from servicekit import audit_grpc, lifecycle

WHEN = dt.datetime(2026, 12, 4, 6, 0, tzinfo=dt.UTC)


def _audit(**fields: object) -> ws_pb.AuditEvent:
    msg = ws_pb.AuditEvent(
        id=str(uuid.uuid4()),
        workspace_id="w1",
        actor="u1",
        action="user.login",
        target="api_keys/k1",
        **fields,
    )
    return msg


def test_an_audit_event_round_trips_and_refuses_what_is_unset() -> None:
    msg = _audit(outcome=ws_pb.AUDIT_OUTCOME_SUCCESS)
    msg.event_time.FromDatetime(WHEN)
    assert audit_grpc.event_from_proto(msg).time == WHEN
    with pytest.raises(ValueError, match="outcome is not set"):
        audit_grpc.event_from_proto(_audit())
    with pytest.raises(ValueError, match="event_time is not set"):
        audit_grpc.event_from_proto(_audit(outcome=ws_pb.AUDIT_OUTCOME_SUCCESS))


def test_a_lifecycle_event_refuses_an_unset_state_or_time() -> None:
    ok = lifecycle_pb2.WorkspaceLifecycleEvent(id="e1", workspace_id="w1", version=1)
    ok.event_time.FromDatetime(WHEN)
    with pytest.raises(ValueError, match="state is not set"):
        lifecycle.event_from_proto(ok)
    event = lifecycle.LifecycleEvent.new("w1", lifecycle.LifecycleState.DELETED, 1, WHEN)
    assert lifecycle.event_from_proto(lifecycle.event_to_proto(event)) == event
    timeless = lifecycle.event_to_proto(event)
    timeless.ClearField("event_time")
    with pytest.raises(ValueError, match="event_time is not set"):
        lifecycle.event_from_proto(timeless)
