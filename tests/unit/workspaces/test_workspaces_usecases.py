"""The workspaces use cases against in-memory fakes: roles, owners, retention, paging, audit."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from servicekit import AuditOrigin, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from servicekit.usecase import Collaborators
from testkit import FakeClock
from workspaces_service.domain import Role
from workspaces_service.usecases import WorkspacesDeps, WorkspacesService

from .fakes import FakeDatabase, FakeDirectory

USERS = ("alice", "bob", "carol", "dave")


@pytest.fixture
def db() -> FakeDatabase:
    return FakeDatabase()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(db: FakeDatabase, clock: FakeClock) -> WorkspacesService:
    ids = (f"ws{i:03d}" for i in itertools.count(1))
    return WorkspacesService(
        WorkspacesDeps(
            Collaborators(
                uow=db.uow,
                clock=clock,
                new_id=lambda: next(ids),
                origin=lambda: AuditOrigin(actor="", request_id="req-1", client_ip="203.0.113.7"),
            ),
            FakeDirectory(*USERS),
        )
    )


async def _team(service: WorkspacesService) -> str:
    """alice Owner, bob Admin, carol User."""
    ws, _ = await service.create("alice", "Acme", False, 0, "")
    await service.add_member("alice", ws.id, "bob@example.com", Role.ADMIN)
    await service.add_member("alice", ws.id, "carol@example.com", Role.USER)
    return ws.id


def _actions(db: FakeDatabase) -> list[str]:
    return [e.action for e in db.state.outbox]


# --- create, idempotency ------------------------------------------------------------------


async def test_create_makes_the_caller_owner_with_the_default_retention(
    service: WorkspacesService,
) -> None:
    ws, role = await service.create("alice", "  Acme  ", True, 0, "")
    assert role is Role.OWNER
    assert (ws.display_name, ws.retention_days, ws.mfa_required) == ("Acme", 30, True)


async def test_create_with_the_same_request_id_returns_the_first_workspace(
    service: WorkspacesService, db: FakeDatabase
) -> None:
    first, _ = await service.create("alice", "Acme", False, 0, "req-42")
    again, _ = await service.create("alice", "Other name", False, 0, "req-42")
    assert again.id == first.id and again.display_name == "Acme"
    other_user, _ = await service.create("bob", "Acme", False, 0, "req-42")
    assert other_user.id != first.id  # request ids are per user
    assert _actions(db).count("workspace.create") == 2


@pytest.mark.parametrize("request_id", ["has space", "x" * 65, "ü"])
async def test_create_refuses_a_malformed_request_id(
    service: WorkspacesService, request_id: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        await service.create("alice", "Acme", False, 0, request_id)
    assert err.value.reason == "INVALID_REQUEST_ID"


@pytest.mark.parametrize("days", [-1, 366])
async def test_create_refuses_a_retention_out_of_range(
    service: WorkspacesService, days: int
) -> None:
    with pytest.raises(InvalidArgument) as err:
        await service.create("alice", "Acme", False, days, "")
    assert err.value.reason == "INVALID_RETENTION"


# --- roles (DESIGN §4) --------------------------------------------------------------------


async def test_admin_changes_settings_but_not_the_plan(service: WorkspacesService) -> None:
    ws_id = await _team(service)
    ws, _ = await service.update("bob", ws_id, {"display_name": "New", "retention_days": 7})
    assert (ws.display_name, ws.retention_days) == ("New", 7)
    with pytest.raises(PermissionDenied) as err:
        await service.update("bob", ws_id, {"plan": 2})
    assert err.value.reason == "OWNER_REQUIRED"


async def test_user_cannot_change_settings(service: WorkspacesService) -> None:
    ws_id = await _team(service)
    with pytest.raises(PermissionDenied) as err:
        await service.update("carol", ws_id, {"display_name": "Mine"})
    assert err.value.reason == "ROLE_TOO_LOW"


async def test_only_an_owner_deletes_or_restores(service: WorkspacesService) -> None:
    ws_id = await _team(service)
    with pytest.raises(PermissionDenied):
        await service.delete("bob", ws_id)
    await service.delete("alice", ws_id)
    with pytest.raises(PermissionDenied):
        await service.undelete("bob", ws_id)
    ws = await service.undelete("alice", ws_id)
    assert not ws.deleted


async def test_admin_manages_members_below_owner_only(service: WorkspacesService) -> None:
    ws_id = await _team(service)
    member = await service.add_member("bob", ws_id, "dave@example.com", Role.USER)
    assert member.role is Role.USER
    with pytest.raises(PermissionDenied) as err:
        await service.update_member("bob", ws_id, "dave", Role.OWNER)
    assert err.value.reason == "OWNER_REQUIRED"
    with pytest.raises(PermissionDenied):
        await service.remove_member("bob", ws_id, "alice")


async def test_user_cannot_manage_members_but_can_leave(service: WorkspacesService) -> None:
    ws_id = await _team(service)
    with pytest.raises(PermissionDenied) as err:
        await service.add_member("carol", ws_id, "dave@example.com", Role.USER)
    assert err.value.reason == "ROLE_TOO_LOW"
    await service.remove_member("carol", ws_id, "carol")
    with pytest.raises(NotFound):
        await service.get("carol", ws_id)


async def test_non_member_sees_not_found_not_forbidden(service: WorkspacesService) -> None:
    ws_id = await _team(service)
    with pytest.raises(NotFound) as err:
        await service.get("dave", ws_id)
    assert err.value.reason == "WORKSPACE_NOT_FOUND"


# --- last owner, transfer -----------------------------------------------------------------


async def test_the_last_owner_can_be_neither_demoted_nor_removed(
    service: WorkspacesService,
) -> None:
    ws_id = await _team(service)
    with pytest.raises(FailedPrecondition) as err:
        await service.update_member("alice", ws_id, "alice", Role.ADMIN)
    assert err.value.reason == "LAST_OWNER"
    with pytest.raises(FailedPrecondition) as err:
        await service.remove_member("alice", ws_id, "alice")
    assert err.value.reason == "LAST_OWNER"


async def test_with_two_owners_one_may_step_down(service: WorkspacesService) -> None:
    ws_id = await _team(service)
    await service.update_member("alice", ws_id, "bob", Role.OWNER)
    demoted = await service.update_member("alice", ws_id, "alice", Role.ADMIN)
    assert demoted.role is Role.ADMIN


async def test_transfer_ownership_swaps_owner_and_admin(service: WorkspacesService) -> None:
    ws_id = await _team(service)
    _, role = await service.transfer_ownership("alice", ws_id, "carol")
    assert role is Role.ADMIN
    assert (await service.get("carol", ws_id))[1] is Role.OWNER
    assert (await service.get("alice", ws_id))[1] is Role.ADMIN
    with pytest.raises(PermissionDenied):
        await service.transfer_ownership("alice", ws_id, "bob")


async def test_transfer_ownership_refuses_strangers_and_self(service: WorkspacesService) -> None:
    ws_id = await _team(service)
    with pytest.raises(NotFound) as err:
        await service.transfer_ownership("alice", ws_id, "dave")
    assert err.value.reason == "MEMBER_NOT_FOUND"
    with pytest.raises(FailedPrecondition) as err2:
        await service.transfer_ownership("alice", ws_id, "alice")
    assert err2.value.reason == "ALREADY_OWNER"


# --- retention window ---------------------------------------------------------------------


async def test_restore_works_until_the_last_instant_of_the_window(
    service: WorkspacesService, clock: FakeClock
) -> None:
    ws_id = await _team(service)
    deleted = await service.delete("alice", ws_id)
    assert deleted.purge_at == clock.now() + dt.timedelta(days=30)
    clock.advance(days=30, microseconds=-1)
    assert not (await service.undelete("alice", ws_id)).deleted


async def test_restore_is_refused_once_the_window_has_ended(
    service: WorkspacesService, clock: FakeClock
) -> None:
    ws_id = await _team(service)
    await service.delete("alice", ws_id)
    clock.advance(days=30)
    with pytest.raises(FailedPrecondition) as err:
        await service.undelete("alice", ws_id)
    assert err.value.reason == "RETENTION_EXPIRED"


async def test_a_deleted_workspace_refuses_changes(service: WorkspacesService) -> None:
    ws_id = await _team(service)
    await service.delete("alice", ws_id)
    with pytest.raises(NotFound) as err:  # the edge's answer for a deleted workspace
        await service.update("alice", ws_id, {"display_name": "x"})
    assert err.value.reason == "WORKSPACE_DELETED"
    with pytest.raises(FailedPrecondition):
        await service.delete("alice", ws_id)


async def test_purge_removes_members_and_keeps_a_tombstone(
    service: WorkspacesService, db: FakeDatabase, clock: FakeClock
) -> None:
    ws_id = await _team(service)
    kept, _ = await service.create("alice", "Kept", False, 0, "")
    await service.delete("alice", ws_id)
    await service.delete("alice", kept.id)
    clock.advance(days=29)
    assert await service.purge_expired(clock.now()) == []
    await service.undelete("alice", kept.id)
    clock.advance(days=1)
    assert await service.purge_expired(clock.now()) == [ws_id]
    tomb = db.state.workspaces[ws_id]
    assert (
        tomb.purged_at == clock.now()
        and tomb.display_name == "Acme"
        and tomb.deleted_at is not None
    )
    assert not [k for k in db.state.members if k[0] == ws_id]
    assert (await service.resolve_access("alice", ws_id)).workspace_exists is False
    assert _actions(db)[-1] == "workspace.purge"
    assert await service.purge_expired(clock.now()) == []  # idempotent


async def test_purge_respects_each_workspace_own_window(
    service: WorkspacesService, clock: FakeClock
) -> None:
    short, _ = await service.create("alice", "Short", False, 1, "")
    long, _ = await service.create("alice", "Long", False, 10, "")
    await service.delete("alice", short.id)
    await service.delete("alice", long.id)
    assert await service.purge_expired(clock.now() + dt.timedelta(days=1)) == [short.id]
    assert await service.purge_expired(clock.now() + dt.timedelta(days=10)) == [long.id]


async def test_purge_frees_the_request_id(service: WorkspacesService, clock: FakeClock) -> None:
    ws, _ = await service.create("alice", "Acme", False, 1, "req-1")
    await service.delete("alice", ws.id)
    await service.purge_expired(clock.advance(days=1))
    again, _ = await service.create("alice", "Acme", False, 1, "req-1")
    assert again.id != ws.id


# --- pagination ---------------------------------------------------------------------------


async def test_list_workspaces_pages_with_opaque_tokens(service: WorkspacesService) -> None:
    for name in ("A", "B", "C"):
        await service.create("alice", name, False, 0, "")
    seen, token = [], ""
    while True:
        rows, token = await service.list("alice", 2, token, False)
        seen += [ws.display_name for ws, _ in rows]
        if not token:
            break
    assert seen == ["A", "B", "C"]


async def test_a_page_token_of_another_query_is_refused(service: WorkspacesService) -> None:
    for name in ("A", "B"):
        await service.create("alice", name, False, 0, "")
    _, token = await service.list("alice", 1, "", False)
    with pytest.raises(InvalidArgument) as err:
        await service.list("bob", 1, token, False)
    assert err.value.reason == "INVALID_PAGE_TOKEN"
    with pytest.raises(InvalidArgument):
        await service.list("alice", -1, "", False)


async def test_deleted_workspaces_are_listed_to_owners_only_on_request(
    service: WorkspacesService,
) -> None:
    ws_id = await _team(service)
    await service.delete("alice", ws_id)
    assert (await service.list("alice", 10, "", False))[0] == []
    assert [w.id for w, _ in (await service.list("alice", 10, "", True))[0]] == [ws_id]
    assert (await service.list("bob", 10, "", True))[0] == []


async def test_list_members_pages(service: WorkspacesService) -> None:
    ws_id = await _team(service)
    first, token = await service.list_members("bob", ws_id, 2, "")
    second, last = await service.list_members("bob", ws_id, 2, token)
    assert [m.user_id for m in first + second] == ["alice", "bob", "carol"] and last == ""


# --- audit --------------------------------------------------------------------------------


async def test_each_mutation_records_exactly_one_event(
    service: WorkspacesService, db: FakeDatabase
) -> None:
    ws_id = await _team(service)
    await service.update("alice", ws_id, {"display_name": "New"})
    await service.update_member("alice", ws_id, "carol", Role.ADMIN)
    await service.remove_member("alice", ws_id, "carol")
    await service.transfer_ownership("alice", ws_id, "bob")
    await service.delete("bob", ws_id)
    await service.undelete("bob", ws_id)
    assert _actions(db) == [
        "workspace.create",
        "member.add",
        "member.add",
        "workspace.update",
        "member.update",
        "member.remove",
        "workspace.transferOwnership",
        "workspace.delete",
        "workspace.undelete",
    ]
    event = db.state.outbox[4]
    assert event.actor == "user:alice" and event.target == f"workspaces/{ws_id}/members/carol"
    assert dict(event.metadata) == {"role": "admin", "previous_role": "user"}
    assert (event.request_id, event.client_ip) == ("req-1", "203.0.113.7")


async def test_refused_and_read_only_calls_record_nothing(
    service: WorkspacesService, db: FakeDatabase
) -> None:
    ws_id = await _team(service)
    before = len(db.state.outbox)
    with pytest.raises(PermissionDenied):
        await service.delete("bob", ws_id)
    await service.get("alice", ws_id)
    await service.list_members("alice", ws_id, 10, "")
    assert len(db.state.outbox) == before


async def test_appending_chains_and_ignores_duplicates(
    service: WorkspacesService, db: FakeDatabase
) -> None:
    ws_id = await _team(service)
    events = list(db.state.outbox)
    assert await service.append_audit_events(events, "workspaces") == (3, 0)
    assert await service.append_audit_events(events + events[:1], "workspaces") == (0, 4)
    report = await service.verify_audit_chain("alice", ws_id)
    assert report.ok and report.verified == 3 and report.head.sequence == 3


async def test_audit_log_is_for_admins_and_owners(
    service: WorkspacesService, db: FakeDatabase
) -> None:
    ws_id = await _team(service)
    await service.append_audit_events(list(db.state.outbox), "workspaces")
    entries, _ = await service.list_audit_events("bob", ws_id, 10, "")
    assert [e.sequence for e in entries] == [3, 2, 1]
    for call in (
        service.list_audit_events("carol", ws_id, 10, ""),
        service.verify_audit_chain("carol", ws_id),
    ):
        with pytest.raises(PermissionDenied):
            await call


async def test_audit_listing_pages_newest_first(
    service: WorkspacesService, db: FakeDatabase
) -> None:
    ws_id = await _team(service)
    await service.update("alice", ws_id, {"display_name": "New"})
    await service.append_audit_events(list(db.state.outbox), "workspaces")
    page1, token = await service.list_audit_events("alice", ws_id, 3, "")
    page2, end = await service.list_audit_events("alice", ws_id, 3, token)
    assert [e.sequence for e in page1 + page2] == [4, 3, 2, 1] and end == ""
    with pytest.raises(InvalidArgument):
        await service.list_audit_events("alice", ws_id, 3, "not-a-token")


# --- lifecycle events for the other services -----------------------------------------------


async def test_delete_restore_purge_each_queue_one_lifecycle_event_with_a_rising_version(
    service: WorkspacesService, db: FakeDatabase, clock: FakeClock
) -> None:
    from servicekit.lifecycle import LifecycleState

    ws_id = await _team(service)
    assert db.state.lifecycle == []  # creating and changing members tells nobody
    await service.delete("alice", ws_id)
    await service.undelete("alice", ws_id)
    await service.delete("alice", ws_id)
    clock.advance(days=30)
    assert await service.purge_expired(clock.now()) == [ws_id]
    assert await service.purge_expired(clock.now()) == []  # a second run queues nothing
    events = db.state.lifecycle
    assert [(e.workspace_id, e.state, e.version) for e in events] == [
        (ws_id, LifecycleState.DELETED, 1),
        (ws_id, LifecycleState.ACTIVE, 2),
        (ws_id, LifecycleState.DELETED, 3),
        (ws_id, LifecycleState.PURGED, 4),
    ]
    assert len({e.id for e in events}) == 4


async def test_a_refused_delete_queues_no_lifecycle_event(
    service: WorkspacesService, db: FakeDatabase
) -> None:
    ws_id = await _team(service)
    with pytest.raises(PermissionDenied):
        await service.delete("bob", ws_id)
    assert db.state.lifecycle == []


async def test_resend_queues_the_current_state_of_every_workspace_ever_deleted(
    service: WorkspacesService, db: FakeDatabase, clock: FakeClock
) -> None:
    from servicekit.lifecycle import LifecycleState

    never = await _team(service)
    restored = await _team(service)
    gone = await _team(service)
    await service.delete("alice", restored)
    await service.undelete("alice", restored)
    await service.delete("alice", gone)
    clock.advance(days=30)
    assert await service.purge_expired(clock.now()) == [gone]
    deleted = await _team(service)
    await service.delete("alice", deleted)
    before = len(db.state.lifecycle)
    assert await service.resend_lifecycle(batch=2) == 3  # paged
    again = [(e.workspace_id, e.state, e.version) for e in db.state.lifecycle[before:]]
    assert sorted(again) == sorted(
        [
            (restored, LifecycleState.ACTIVE, 2),
            (gone, LifecycleState.PURGED, 2),
            (deleted, LifecycleState.DELETED, 1),
        ]
    )
    assert never not in {e.workspace_id for e in db.state.lifecycle}
