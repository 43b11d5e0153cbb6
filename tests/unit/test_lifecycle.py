"""Workspace lifecycle events (servicekit.lifecycle): the receiver's rule, the envelope, the wire."""

from __future__ import annotations

import datetime as dt

import pytest
from railguard.workspaces.v1 import lifecycle_pb2
from servicekit import FailedPrecondition, InvalidArgument, NotFound
from servicekit.audit import check_metadata
from servicekit.lifecycle import (
    Held,
    LifecycleEvent,
    LifecycleState,
    event_from_proto,
    event_to_proto,
    events_from_request,
    is_alive,
    refusal,
    supersedes,
)

ACTIVE, DELETED, PURGED = LifecycleState.ACTIVE, LifecycleState.DELETED, LifecycleState.PURGED
T = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def ev(state: LifecycleState, version: int, ws: str = "ws1") -> LifecycleEvent:
    return LifecycleEvent.new(ws, state, version, T)


def test_the_first_event_about_a_workspace_always_applies() -> None:
    for state in LifecycleState:
        assert supersedes(None, ev(state, 1))


def test_a_higher_version_wins_and_a_replay_or_an_older_one_changes_nothing() -> None:
    held = Held(DELETED, 3)
    assert supersedes(held, ev(ACTIVE, 4))
    assert not supersedes(held, ev(ACTIVE, 3))  # the same event again
    assert not supersedes(held, ev(ACTIVE, 2))  # a restore overtaken by a later delete
    assert not supersedes(Held(ACTIVE, 4), ev(DELETED, 3))


def test_purged_is_final_and_a_purge_applies_over_any_live_version() -> None:
    assert not supersedes(Held(PURGED, 3), ev(ACTIVE, 9))
    assert not supersedes(Held(PURGED, 3), ev(PURGED, 3))
    assert not supersedes(Held(PURGED, 3), ev(PURGED, 4))
    # out of order: the purge arrives before the delete it followed, or with a lower version
    assert supersedes(Held(ACTIVE, 5), ev(PURGED, 2))
    assert supersedes(Held(DELETED, 1), ev(PURGED, 2))


def test_only_an_unknown_or_active_workspace_is_alive() -> None:
    assert is_alive(None) and is_alive(Held(ACTIVE, 2))
    assert not is_alive(Held(DELETED, 1)) and not is_alive(Held(PURGED, 2))


def test_refusals_carry_stable_reasons() -> None:
    deleted = refusal(Held(DELETED, 1))
    purged = refusal(Held(PURGED, 2))
    assert isinstance(deleted, FailedPrecondition) and deleted.reason == "WORKSPACE_DELETED"
    assert isinstance(purged, NotFound) and purged.reason == "WORKSPACE_NOT_FOUND"


def test_the_outbox_envelope_round_trips_and_passes_the_audit_metadata_checks() -> None:
    event = ev(PURGED, 7, "ws_x")
    envelope = event.envelope()
    check_metadata(envelope.metadata)
    assert envelope.action == "workspace.lifecycle" and envelope.workspace_id == "ws_x"
    assert LifecycleEvent.from_envelope(envelope) == event
    # through the outbox's JSON form as well
    from servicekit.audit import AuditEvent

    assert LifecycleEvent.from_envelope(AuditEvent.from_dict(envelope.to_dict())) == event


def test_an_audit_event_is_not_taken_for_a_lifecycle_event() -> None:
    from servicekit.audit import AuditEvent

    other = AuditEvent.new(
        workspace_id="ws1",
        actor="system",
        action="workspace.delete",
        target="workspaces/ws1",
        time=T,
    )
    with pytest.raises(ValueError, match="not a lifecycle event"):
        LifecycleEvent.from_envelope(other)


def test_the_wire_form_round_trips() -> None:
    event = ev(DELETED, 2)
    assert event_from_proto(event_to_proto(event)) == event


@pytest.mark.parametrize(
    "msg",
    [
        lifecycle_pb2.WorkspaceLifecycleEvent(id="not-a-uuid", workspace_id="w", version=1),
        lifecycle_pb2.WorkspaceLifecycleEvent(
            id="00000000-0000-4000-8000-000000000000", workspace_id="w", version=1
        ),  # no state
    ],
)
def test_a_malformed_event_is_invalid_argument(msg: lifecycle_pb2.WorkspaceLifecycleEvent) -> None:
    with pytest.raises(InvalidArgument) as err:
        events_from_request([msg])
    assert err.value.reason == "INVALID_LIFECYCLE_EVENT"


def test_versions_start_at_one_and_times_are_aware() -> None:
    with pytest.raises(ValueError):
        LifecycleEvent.new("ws1", ACTIVE, 0, T)
    with pytest.raises(ValueError):
        LifecycleEvent.new("ws1", ACTIVE, 1, T.replace(tzinfo=None))
