"""The audit event value, its secret denylist, and the hash chain's verifier."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from servicekit.audit import AuditEvent, AuditMetadataError, Outcome, check_metadata
from workspaces_service.domain.audit_log import GENESIS_HASH, ChainHead, ChainVerifier, chain_entry

T = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def _event(**metadata: str) -> AuditEvent:
    return AuditEvent.new(
        workspace_id="w1",
        actor="user:alice",
        action="workspace.update",
        target="workspaces/w1",
        time=T,
        metadata=metadata,
    )


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "new_password",
        "client_secret",
        "token",
        "refresh_token",
        "code",
        "recovery_codes",
        "pin",
        "otp",
        "totp_secret",
        "credential",
        "plaintext",
        "private",
        "api_key",
        "key",
        "signing_key",
        "apikey",
        "authorization",
        "cookie",
        "hash",
        "jwt",
        "pepper",
    ],
)
def test_secret_like_keys_are_refused(key: str) -> None:
    with pytest.raises(AuditMetadataError):
        _event(**{key: "x"})


@pytest.mark.parametrize(
    "key", ["api_key_id", "role", "previous_role", "fields", "new_owner", "purge_time"]
)
def test_ordinary_keys_pass(key: str) -> None:
    assert dict(_event(**{key: "v"}).metadata) == {key: "v"}


@pytest.mark.parametrize(
    "value",
    ["rg_live_abcdef0123456789", "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.sig", "vault:v1:Zm9vYmFy"],
)
def test_secret_like_values_are_refused_whatever_the_key(value: str) -> None:
    with pytest.raises(AuditMetadataError):
        _event(note=value)


def test_metadata_size_is_capped() -> None:
    with pytest.raises(AuditMetadataError):
        check_metadata({f"k{i}": "v" for i in range(17)})
    with pytest.raises(AuditMetadataError):
        check_metadata({"note": "x" * 257})
    with pytest.raises(AuditMetadataError):
        check_metadata({f"k{i}": "x" * 200 for i in range(12)})
    with pytest.raises(AuditMetadataError):
        check_metadata({"Not-Snake": "v"})


def test_events_need_a_uuid_and_a_noun_verb_action() -> None:
    with pytest.raises(ValueError):
        dataclasses.replace(_event(), id="nope")
    with pytest.raises(AuditMetadataError):
        dataclasses.replace(_event(), action="update")


def test_the_canonical_json_round_trips() -> None:
    event = _event(role="admin")
    assert AuditEvent.from_dict(event.to_dict()) == event
    assert event.to_json() == AuditEvent.from_dict(event.to_dict()).to_json()
    assert event.outcome is Outcome.SUCCESS


def _chain(n: int) -> list:  # type: ignore[type-arg]
    entries, prev = [], GENESIS_HASH
    for seq in range(1, n + 1):
        entry = chain_entry(prev, _event(n=str(seq)), seq, "workspaces")
        entries.append(entry)
        prev = entry.hash
    return entries


def test_an_intact_chain_verifies() -> None:
    entries = _chain(5)
    verifier = ChainVerifier()
    assert verifier.feed(entries)
    verifier.finish(ChainHead(5, entries[-1].hash))
    assert (verifier.broken_at, verifier.verified) == (0, 5)


@pytest.mark.parametrize(
    ("tamper", "broken"),
    [
        (
            lambda es: es.__setitem__(
                2, dataclasses.replace(es[2], event=dataclasses.replace(es[2].event, actor="x"))
            ),
            3,
        ),
        (lambda es: es.pop(1), 2),
        (lambda es: es.insert(1, es.pop(2)), 2),
        (lambda es: es.__setitem__(0, dataclasses.replace(es[0], source="keys")), 1),
    ],
    ids=["edited", "deleted", "reordered", "source changed"],
)
def test_tampering_is_reported_at_the_first_broken_sequence(tamper, broken: int) -> None:  # type: ignore[no-untyped-def]
    entries = _chain(5)
    head = ChainHead(5, entries[-1].hash)
    tamper(entries)
    verifier = ChainVerifier()
    verifier.feed(entries)
    verifier.finish(head)
    assert verifier.broken_at == broken


def test_a_deleted_tail_is_caught_by_the_head() -> None:
    entries = _chain(5)
    verifier = ChainVerifier()
    verifier.feed(entries[:3])
    verifier.finish(ChainHead(5, entries[-1].hash))
    assert verifier.broken_at == 4
