"""The audit event is pure, its actions are one enum, and the outbox pieces are one of each.

``servicekit.audit`` is what domain code may import: loading it (or the workspaces audit-log
domain) must not load gRPC, SQLAlchemy, protobuf or a service contract. An event with an action
outside ``AuditAction`` is refused, and docs/audit.md's table of actions is the enum's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from servicekit.audit import AuditAction, AuditEvent, AuditMetadataError, AuditOrigin, Outcome
from servicekit.outbox import OutboxRepository

ROOT = Path(__file__).resolve().parents[2]
T = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
_HEAVY = ("grpc", "sqlalchemy", "google", "railguard")


@pytest.mark.parametrize(
    "module", ["servicekit.audit", "workspaces_service.domain.audit_log", "servicekit.ports"]
)
def test_the_pure_modules_load_no_grpc_sql_or_contract(module: str) -> None:
    probe = (
        f"import sys, {module}\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(_HEAVY)!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", f"{module} loads {out.stdout.strip()}"


def _event(action: str) -> AuditEvent:
    return AuditEvent.new(workspace_id="w1", actor="system", action=action, target="t", time=T)


@pytest.mark.parametrize("action", list(AuditAction))
def test_every_listed_action_makes_an_event_that_round_trips(action: AuditAction) -> None:
    event = _event(action)
    assert event.action == action.value
    assert AuditEvent.from_dict(event.to_dict()) == event
    assert f'"action":"{action.value}"' in event.to_json()


@pytest.mark.parametrize("action", ["apiKey.creat", "workspace.remove", "x.y", "user.login.now"])
def test_an_action_outside_the_enum_is_refused(action: str) -> None:
    with pytest.raises(AuditMetadataError, match="AuditAction"):
        _event(action)
    with pytest.raises(AuditMetadataError, match="AuditAction"):
        dataclasses.replace(_event("apiKey.create"), action=action)


def test_a_stored_event_with_an_unknown_action_does_not_load() -> None:
    data = _event("apiKey.create").to_dict() | {"action": "apiKey.exfiltrate"}
    with pytest.raises(AuditMetadataError):
        AuditEvent.from_dict(data)


def test_the_actions_are_noun_verb_and_distinct() -> None:
    values = [a.value for a in AuditAction]
    assert len(values) == len(set(values))
    for value in values:
        noun, _, verb = value.partition(".")
        assert noun and verb and noun[0].islower() and verb[0].islower(), value


def test_docs_audit_md_lists_exactly_the_enum() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "audit_actions.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    doc = (ROOT / "docs" / "audit.md").read_text()
    for action in AuditAction:
        assert f"| `{action.value}` | `{action.name}` |" in doc


class _Writer:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, str]] = []

    async def record(self, session: Any, item: str, /) -> None:
        self.rows.append((session, item))


async def test_an_outbox_repository_records_in_its_unit_of_works_session() -> None:
    writer, session = _Writer(), object()
    repo: OutboxRepository[str] = OutboxRepository(session, writer)  # type: ignore[arg-type]
    await repo.record("a")
    await repo.record("b")
    assert writer.rows == [(session, "a"), (session, "b")]


async def test_an_outbox_repository_without_its_outbox_refuses_rather_than_drops() -> None:
    repo: OutboxRepository[str] = OutboxRepository(object(), None)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="without"):
        await repo.record("a")


def test_an_origins_event_carries_its_actor_request_and_address() -> None:
    origin = AuditOrigin("apiKey:k1", "req-1", "203.0.113.7")
    event = origin.event(
        on_behalf_of="user:u1",
        workspace_id="w1",
        action=AuditAction.API_KEY_CREATE,
        target="workspaces/w1/apiKeys/k2",
        time=T,
        metadata={"scopes": "keys:read"},
    )
    assert (event.actor, event.request_id, event.client_ip) == ("apiKey:k1", "req-1", "203.0.113.7")
    assert (event.workspace_id, event.action, event.target, event.time) == (
        "w1",
        "apiKey.create",
        "workspaces/w1/apiKeys/k2",
        T,
    )
    assert event.metadata == {"scopes": "keys:read"}
    assert event.outcome is Outcome.SUCCESS


def test_an_origin_without_an_actor_records_on_behalf_of_the_user() -> None:
    event = AuditOrigin(actor="").event(
        on_behalf_of="user:u1", workspace_id="w1", action="member.add", target="t", time=T
    )
    assert (event.actor, event.request_id, event.client_ip) == ("user:u1", "", "")
