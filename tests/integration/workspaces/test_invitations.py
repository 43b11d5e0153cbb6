"""Invitations through a real workspaces server: invite, list, revoke, accept (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from railguard.workspaces.v1 import workspaces_service_pb2, workspaces_service_pb2_grpc
from railguard.workspaces.v1 import workspaces_service_pb2 as pb
from servicekit import Registration, Settings, Wiring, create_engine, session_factory
from servicekit.db import dispose_engine
from servicekit.mail import Mail, MailOutbox
from servicekit.usecase import Collaborators
from sqlalchemy.ext.asyncio import AsyncEngine
from testkit import FakeClock, channel_as, running, test_settings
from workspaces_service.__main__ import MIGRATIONS, _key_manager, wire_service
from workspaces_service.adapters.invitations import MAIL_OUTBOX, InvitationsUnitOfWork
from workspaces_service.invitations import InvitationConfig, InvitationService
from workspaces_service.security_log import SecurityLogService
from workspaces_service.servicer import WorkspacesServicer

from .conftest import ADMIN, OWNER, USER, Directory, as_user, reason

_TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})")


@dataclass
class Server:
    port: int
    pki: Path
    clock: FakeClock
    directory: Directory
    outbox: MailOutbox
    engine: AsyncEngine

    def stub(self) -> workspaces_service_pb2_grpc.WorkspacesServiceStub:
        return workspaces_service_pb2_grpc.WorkspacesServiceStub(
            channel_as("edge", self.pki, self.port)
        )

    async def mails(self, to: str) -> list[Mail]:
        async with session_factory(self.engine)() as session:
            return [m for m in await self.outbox.unsent(session, 1000) if m.to == to]

    async def token_for(self, to: str) -> str:
        match = _TOKEN.search((await self.mails(to))[-1].body)
        assert match is not None
        return match.group(1)


@pytest.fixture
async def server(pki: Path, database_url: str, tmp_path: Path) -> AsyncIterator[Server]:
    directory = Directory()
    for uid in ("alice", "bob", "carol", "dave", "erin"):
        directory.add(uid)
    clock = FakeClock()
    wired: dict[str, object] = {}
    settings = test_settings(
        "workspaces", pki, database_url, {"RAILGUARD_STATE_DIR": str(tmp_path)}
    )

    async def build(settings: Settings) -> Wiring:
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        service, relay = wire_service(sessions, clock, directory, relay_interval=0.05)
        kms = _key_manager(settings)  # the real local keyring seals the mail bodies
        outbox = MAIL_OUTBOX.with_sealer(kms)
        invitations = InvitationService(
            Collaborators(uow=lambda: InvitationsUnitOfWork(sessions, outbox), clock=clock),
            directory,
            InvitationConfig(public_url="https://railguard.example.org"),
        )
        wired.update(engine=engine, outbox=outbox)
        registration = Registration(
            workspaces_service_pb2_grpc.add_WorkspacesServiceServicer_to_server,
            WorkspacesServicer(
                service,
                invitations,
                SecurityLogService(lambda: InvitationsUnitOfWork(sessions, outbox)),
            ),
            workspaces_service_pb2,
        )
        return Wiring(
            [registration],
            on_stop=[functools.partial(dispose_engine, engine), kms.close, relay.stop],
        )

    async with running(settings, build, MIGRATIONS) as running_server:
        yield Server(
            running_server.port,
            pki,
            clock,
            directory,
            wired["outbox"],  # type: ignore[arg-type]
            wired["engine"],  # type: ignore[arg-type]
        )


async def _team(s: Server) -> str:
    stub = s.stub()
    ws = await stub.CreateWorkspace(
        pb.CreateWorkspaceRequest(workspace=pb.Workspace(display_name="Acme")),
        metadata=as_user("alice"),
    )
    ws_id = ws.name.split("/")[1]
    for user, role in (("bob", ADMIN), ("carol", USER)):
        await stub.CreateMember(
            pb.CreateMemberRequest(
                parent=ws.name, member=pb.Member(email=f"{user}@example.com", role=role)
            ),
            metadata=as_user("alice", ws_id, OWNER),
        )
    return ws_id


async def _invite(s: Server, ws_id: str, email: str, role: int, by: str = "bob") -> pb.Invitation:
    by_role = {"alice": OWNER, "bob": ADMIN, "carol": USER}[by]
    return await s.stub().CreateInvitation(
        pb.CreateInvitationRequest(
            parent=f"workspaces/{ws_id}", invitation=pb.Invitation(email=email, role=role)
        ),
        metadata=as_user(by, ws_id, by_role),
    )


async def _fails(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call  # type: ignore[misc]
    return err.value.code(), reason(err.value)


async def test_invite_mail_accept_and_the_role_rules(server: Server) -> None:
    ws_id = await _team(server)
    inv = await _invite(server, ws_id, "Dave@Example.com", USER)
    assert (inv.email, inv.state) == ("dave@example.com", pb.INVITATION_STATE_PENDING)
    assert inv.inviter == "users/bob"
    (mail,) = await server.mails("dave@example.com")
    assert (
        "Acme" in mail.subject
        and "https://railguard.example.org/accept-invitation?token=" in mail.body
    )
    # today's role rules: an Admin cannot invite an Owner, a User cannot invite at all
    assert await _fails(_invite(server, ws_id, "erin@example.com", OWNER)) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "OWNER_REQUIRED",
    )
    assert (await _fails(_invite(server, ws_id, "erin@example.com", USER, by="carol")))[1] == (
        "ROLE_TOO_LOW"
    )
    token = await server.token_for("dave@example.com")
    # another signed-in address gets the same answer as a bad token; nothing is spent
    wrong = await _fails(
        server.stub().AcceptInvitation(
            pb.AcceptInvitationRequest(token=token), metadata=as_user("erin")
        )
    )
    bogus = await _fails(
        server.stub().AcceptInvitation(
            pb.AcceptInvitationRequest(token="A" * 43), metadata=as_user("dave")
        )
    )
    assert wrong == bogus == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_TOKEN")
    results = await asyncio.gather(
        *(
            server.stub().AcceptInvitation(
                pb.AcceptInvitationRequest(token=token), metadata=as_user("dave")
            )
            for _ in range(2)
        ),
        return_exceptions=True,
    )
    members = [r for r in results if isinstance(r, pb.Member)]
    assert len(members) == 1 and members[0].role == USER, results
    assert members[0].name == f"workspaces/{ws_id}/members/dave"
    listed = await server.stub().ListInvitations(
        pb.ListInvitationsRequest(parent=f"workspaces/{ws_id}"),
        metadata=as_user("alice", ws_id, OWNER),
    )
    assert [i.state for i in listed.invitations] == [pb.INVITATION_STATE_ACCEPTED]


async def test_revoked_superseded_and_expired_invitations_answer_alike(server: Server) -> None:
    ws_id = await _team(server)
    first = await _invite(server, ws_id, "dave@example.com", USER)
    old = await server.token_for("dave@example.com")
    server.clock.advance(1)
    await _invite(server, ws_id, "dave@example.com", ADMIN)  # supersedes the first
    newer = await server.token_for("dave@example.com")
    server.clock.advance(1)
    await _invite(server, ws_id, "erin@example.com", USER)
    erin = await server.token_for("erin@example.com")
    listed = await server.stub().ListInvitations(
        pb.ListInvitationsRequest(parent=f"workspaces/{ws_id}", page_size=2),
        metadata=as_user("bob", ws_id, ADMIN),
    )
    assert len(listed.invitations) == 2 and listed.next_page_token
    assert [i.email for i in listed.invitations] == ["erin@example.com", "dave@example.com"]
    revoked = await server.stub().RevokeInvitation(
        pb.RevokeInvitationRequest(name=listed.invitations[1].name),
        metadata=as_user("bob", ws_id, ADMIN),
    )
    assert revoked.state == pb.INVITATION_STATE_REVOKED
    answers = {
        await _fails(
            server.stub().AcceptInvitation(
                pb.AcceptInvitationRequest(token=old), metadata=as_user("dave")
            )
        ),
        await _fails(
            server.stub().AcceptInvitation(
                pb.AcceptInvitationRequest(token=newer), metadata=as_user("dave")
            )
        ),
    }
    server.clock.advance(days=7, seconds=1)
    answers.add(
        await _fails(
            server.stub().AcceptInvitation(
                pb.AcceptInvitationRequest(token=erin), metadata=as_user("erin")
            )
        )
    )
    assert answers == {(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_TOKEN")}
    assert first.name != revoked.name
    # pending invitations are not members: the workspace still has three
    members = await server.stub().ListMembers(
        pb.ListMembersRequest(parent=f"workspaces/{ws_id}"),
        metadata=as_user("alice", ws_id, OWNER),
    )
    assert len(members.members) == 3


# ---- the user's security log -------------------------------------------------------------------


async def test_my_security_events_are_mine_newest_first_and_paginated(server: Server) -> None:
    import datetime as dt

    from servicekit.audit import AuditEvent, Outcome
    from servicekit.audit_grpc import event_to_proto

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def ev(target: str, action: str, minute: int, **kw: object) -> AuditEvent:
        return AuditEvent.new(
            workspace_id="",
            actor="user:x",
            action=action,
            target=target,
            time=t0 + dt.timedelta(minutes=minute),
            client_ip="203.0.113.7",
            **kw,  # type: ignore[arg-type]
        )

    events = [
        ev("users/u1", "user.signUp", 0),
        ev("users/u1", "user.login", 1, metadata={"session_id": "s1", "aal": "aal1"}),
        ev("users/u1x", "user.login", 2),  # another user whose id starts with u1
        ev("users/u2", "user.login", 3),
        ev(
            "users/u1",
            "user.login",
            4,
            outcome=Outcome.DENIED,
            metadata={"reason": "INVALID_PASSWORD"},
        ),
        ev("users/u1/sessions/s1", "refreshToken.reuse", 5, outcome=Outcome.DENIED),
        ev("workspaces/w1", "workspace.create", 6),
    ]
    auth = workspaces_service_pb2_grpc.WorkspacesServiceStub(
        channel_as("auth", server.pki, server.port)
    )
    await auth.AppendAuditEvents(
        pb.AppendAuditEventsRequest(events=[event_to_proto(e) for e in events])
    )
    seen: list[pb.AuditEvent] = []
    token = ""
    while True:
        page = await server.stub().ListMySecurityEvents(
            pb.ListMySecurityEventsRequest(page_size=2, page_token=token), metadata=as_user("u1")
        )
        seen += page.events
        token = page.next_page_token
        if not token:
            break
    assert [e.action for e in seen] == [
        "refreshToken.reuse",
        "user.login",
        "user.login",
        "user.signUp",
    ]
    assert seen[0].name.startswith("users/me/securityEvents/") and seen[0].sequence > 0
    assert seen[1].outcome == pb.AUDIT_OUTCOME_DENIED and seen[1].client_ip == "203.0.113.7"
    assert dict(seen[2].metadata) == {"session_id": "s1", "aal": "aal1"}
    other = await server.stub().ListMySecurityEvents(
        pb.ListMySecurityEventsRequest(), metadata=as_user("u2")
    )
    assert [e.target for e in other.events] == ["users/u2"]
    # the page token is bound to its user: u2 cannot page through u1's log
    first = await server.stub().ListMySecurityEvents(
        pb.ListMySecurityEventsRequest(page_size=1), metadata=as_user("u1")
    )
    assert first.next_page_token
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await server.stub().ListMySecurityEvents(
            pb.ListMySecurityEventsRequest(page_token=first.next_page_token),
            metadata=as_user("u2"),
        )
    assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_an_address_is_invited_at_most_five_times_a_day(server: Server) -> None:
    ws_id = await _team(server)
    for _ in range(5):
        await _invite(server, ws_id, "dave@example.com", USER)
        server.clock.advance(1)
    assert await _fails(_invite(server, ws_id, "dave@example.com", USER)) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "INVITATION_THROTTLED",
    )
    await _invite(server, ws_id, "erin@example.com", USER)  # another address is not affected
    server.clock.advance(days=1)
    await _invite(server, ws_id, "dave@example.com", USER)
