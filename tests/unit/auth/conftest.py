"""Use-case fixtures on in-memory fakes (no database): a fake clock, a cheap hasher, a
reversible sealer, the real Ed25519 signer (tokens stay readable JWTs), and the committed audit
outbox and mail outbox read back from the fake store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from auth_service.adapters.common_passwords import CommonPasswords, load_common_passwords
from auth_service.adapters.jwt_signer import Ed25519JwtSigner
from auth_service.usecases import AuthConfig, AuthUseCases, build_use_cases
from servicekit import AuditEvent, AuditOrigin
from servicekit.mail import Mail
from servicekit.usecase import Collaborators
from testkit import FakeClock

from .fakes import FakeHasher, FakeMemberships, FakeSealer, FakeStore


@dataclass
class Env:
    auth: AuthUseCases
    clock: FakeClock
    hasher: FakeHasher
    store: FakeStore
    config: AuthConfig
    sealer: FakeSealer
    pokes: list[int] = field(default_factory=list)
    origin: list[AuditOrigin] = field(default_factory=list)
    memberships: FakeMemberships = field(default_factory=FakeMemberships)

    async def mails(self, to: str = "") -> list[Mail]:
        """The committed mails, those to ``to`` only when given."""
        return [m for m in self.store.tables.mails if not to or m.to == to]

    async def audit(self, action: str = "") -> list[AuditEvent]:
        """The committed audit events in order, those of ``action`` only when given."""
        return [e for e in self.store.tables.events if not action or e.action == action]


# What the RPC context would give (servicekit.origin_from_context) for a call through the edge.
ORIGIN = AuditOrigin(actor="service:edge", request_id="req-test-1", client_ip="203.0.113.9")

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="session")
def blocklist() -> CommonPasswords:
    return load_common_passwords()


@pytest.fixture
async def env(blocklist: CommonPasswords) -> AsyncIterator[Env]:
    store, clock, hasher, config = FakeStore(), FakeClock(), FakeHasher(), AuthConfig()
    sealer = FakeSealer()
    pokes: list[int] = []
    origin = [ORIGIN]
    memberships = FakeMemberships()
    auth = build_use_cases(
        Collaborators(
            uow=store.uow,
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
    yield Env(auth, clock, hasher, store, config, sealer, pokes, origin, memberships)
