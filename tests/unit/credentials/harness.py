"""The credentials use cases wired on the fakes, as the composition root wires them on SQL."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import pytest
from credentials_service.domain import TokenHasher
from credentials_service.usecases import (
    Actor,
    CredentialsRetention,
    CredentialUseCases,
    DeliveryUseCases,
    Deps,
    KeyRotation,
    WebhookTriggerUseCases,
)
from servicekit.audit import AuditEvent
from servicekit.errors import RailguardError
from servicekit.usecase import Collaborators
from testkit.clock import FakeClock

from .fakes import FakeGate, FakeKeyManager, Store

WS = "ws_a"
OTHER_WS = "ws_b"
ALICE = Actor("alice", WS)
MALLORY = Actor("mallory", OTHER_WS)
OPENAI = "sk-proj-abcDEFghiJKLmnoPQRstuVWXyz0123456789"  # noqa: S105 - a made-up key
OPENAI_MASK = "sk-proj-abc...6789"
RETENTION_DAYS = 30


@dataclass
class Harness:
    store: Store
    clock: FakeClock
    kms: FakeKeyManager
    gate: FakeGate
    hasher: TokenHasher
    credentials: CredentialUseCases
    triggers: WebhookTriggerUseCases
    deliveries: DeliveryUseCases
    rotation: KeyRotation
    retention: CredentialsRetention
    relay_pokes: list[int]

    def events(self, action: str | None = None) -> list[AuditEvent]:
        return [e for e in self.store.events if action is None or e.action == action]


def make_harness(tmp_path: Path) -> Harness:
    store, clock, gate = Store(), FakeClock(), FakeGate()
    kms = FakeKeyManager(tmp_path)
    hasher = TokenHasher(b"p" * 32)
    pokes: list[int] = []
    ids = (f"id{n:04d}" for n in itertools.count())

    def new_id() -> str:
        return next(ids)

    shared = Collaborators(
        uow=store, clock=clock, new_id=new_id, after_commit=lambda: pokes.append(1)
    )
    deps = Deps(shared, gate, retention_days=RETENTION_DAYS)
    triggers = WebhookTriggerUseCases(deps, kms, hasher)
    return Harness(
        store=store,
        clock=clock,
        kms=kms,
        gate=gate,
        hasher=hasher,
        credentials=CredentialUseCases(deps, kms),
        triggers=triggers,
        deliveries=DeliveryUseCases(deps, hasher, triggers),
        rotation=KeyRotation(store, kms),
        retention=CredentialsRetention(shared, RETENTION_DAYS),
        relay_pokes=pokes,
    )


async def refused(awaitable: object) -> RailguardError:
    """The domain error an awaited use case raises (the test fails when it raises none)."""
    with pytest.raises(RailguardError) as info:
        await awaitable  # type: ignore[misc]
    return info.value
