"""Use-case fixtures on SQLite: a migrated database, a fake clock, a cheap fake hasher, and the
audit outbox read back as events."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from auth_service.__main__ import MIGRATIONS
from auth_service.adapters.common_passwords import CommonPasswords, load_common_passwords
from auth_service.adapters.jwt_signer import Ed25519JwtSigner
from auth_service.adapters.repository import AuthUnitOfWork
from auth_service.adapters.sealer import LocalKekSealer
from auth_service.adapters.tables import AUDIT_OUTBOX, MAIL_OUTBOX
from auth_service.usecases import AuthConfig, AuthUseCases, build_use_cases
from servicekit import AuditEvent, AuditOrigin, create_engine, session_factory, upgrade
from servicekit.db import dispose_engine
from servicekit.mail import Mail, MailOutbox
from servicekit.usecase import Collaborators
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from testkit import FakeClock

from tests.unit.auth.fakes import FakeHasher, FakeMemberships


@dataclass
class Env:
    auth: AuthUseCases
    clock: FakeClock
    hasher: FakeHasher
    sessions: async_sessionmaker[AsyncSession]
    config: AuthConfig
    pokes: list[int] = field(default_factory=list)
    origin: list[AuditOrigin] = field(default_factory=list)
    mail: MailOutbox | None = None
    memberships: FakeMemberships = field(default_factory=FakeMemberships)

    def uow(self) -> AuthUnitOfWork:
        return AuthUnitOfWork(self.sessions, self.mail)

    async def mails(self, to: str = "") -> list[Mail]:
        """The mails waiting in the outbox (opened), those to ``to`` only when given."""
        assert self.mail is not None
        async with self.sessions() as session:
            found = await self.mail.unsent(session, 1000)
        return [m for m in found if not to or m.to == to]

    async def audit(self, action: str = "") -> list[AuditEvent]:
        """The outbox's events in order, those of ``action`` only when given."""
        table = AUDIT_OUTBOX.table
        async with self.sessions() as session:
            rows = (await session.execute(select(table.c.payload).order_by(table.c.seq))).all()
        events = [AuditEvent.from_dict(json.loads(r.payload)) for r in rows]
        return [e for e in events if not action or e.action == action]


# What the RPC context would give (servicekit.origin_from_context) for a call through the edge.
ORIGIN = AuditOrigin(actor="service:edge", request_id="req-test-1", client_ip="203.0.113.9")


PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def blocklist() -> CommonPasswords:
    return load_common_passwords()


@pytest.fixture
async def env(tmp_path: Path, blocklist: CommonPasswords) -> AsyncIterator[Env]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}"
    await upgrade(url, "auth", MIGRATIONS)
    engine = create_engine(url)
    sessions = session_factory(engine)
    clock, hasher, config = FakeClock(), FakeHasher(), AuthConfig()
    pokes: list[int] = []
    origin = [ORIGIN]
    sealer = LocalKekSealer(secrets.token_bytes(32))
    mail = MAIL_OUTBOX.with_sealer(sealer)
    memberships = FakeMemberships()
    auth = build_use_cases(
        Collaborators(
            uow=lambda: AuthUnitOfWork(sessions, mail),
            clock=clock,
            origin=lambda: origin[0],
            after_commit=lambda: pokes.append(1),
        ),
        hasher,
        blocklist,
        sealer,
        Ed25519JwtSigner(),
        config,
        memberships=memberships,
    )
    await auth.signing_keys.rotate_signing_keys()
    try:
        yield Env(auth, clock, hasher, sessions, config, pokes, origin, mail, memberships)
    finally:
        await dispose_engine(engine)
