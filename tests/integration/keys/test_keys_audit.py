"""DESIGN R16 for API keys: one audit event per mutation in the same transaction (outbox), throttled
events for refused known keys, no secret in any event, and the purge job's tombstones."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import subprocess
import sys

import grpc
from google.protobuf import duration_pb2, field_mask_pb2
from keys_service.__main__ import purge
from keys_service.domain import parse_key
from railguard.keys.v1 import keys_service_pb2 as pb
from servicekit import AuditEvent
from servicekit.audit import format_time
from sqlalchemy import text
from testkit import FakeClock
from testkit import test_settings as settings_for

from .conftest import PEPPERS, KeysServer
from .test_keys_api import ADMIN, _create, _fails, _verify


def _payloads(events: list[AuditEvent]) -> str:
    return "\n".join(e.to_json() for e in events)


def _digest_forms(ks: KeysServer, *keys: str) -> list[str]:
    """The keyed hashes of ``keys`` under every pepper, as hex and base64."""
    out: list[str] = []
    for key in keys:
        for h in ks.ring.lookup_hashes(parse_key(key)):
            out += [h.digest.hex(), base64.b64encode(h.digest).decode()]
    return out


def _secret_forms(*keys: str) -> list[str]:
    return [form for key in keys for form in (key, key[8:51], key[8:])]


async def _unsent(ks: KeysServer) -> int:
    async with ks.engine.connect() as conn:
        query = text("SELECT count(*) FROM keys_audit_outbox WHERE sent_at IS NULL")
        return int((await conn.execute(query)).scalar_one())


async def test_every_mutation_records_one_event_without_secrets(keys_server: KeysServer) -> None:
    ks, stub = keys_server, keys_server.stub()
    md = ks.md("alice", client_ip="198.51.100.7")
    request = pb.CreateApiKeyRequest(
        parent="workspaces/ws_a",
        request_id="once",
        api_key=pb.ApiKey(display_name="CI", environment=pb.ENVIRONMENT_LIVE, scopes=["keys:read"]),
    )
    created = await stub.CreateApiKey(request, metadata=md)
    assert (await stub.CreateApiKey(request, metadata=md)).key == ""  # a retry records nothing
    name = created.api_key.name
    await stub.UpdateApiKey(
        pb.UpdateApiKeyRequest(
            api_key=pb.ApiKey(name=name, display_name="CI 2", scopes=["keys:read", "keys:write"]),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name", "scopes"]),
        ),
        metadata=md,
    )
    rotated = await stub.RotateApiKey(
        pb.RotateApiKeyRequest(name=name, grace_period=duration_pb2.Duration(seconds=600)),
        metadata=md,
    )
    await stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=name), metadata=md)
    await stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=name), metadata=md)  # no-op
    await stub.UndeleteApiKey(pb.UndeleteApiKeyRequest(name=name), metadata=md)
    await stub.RevokeApiKey(pb.RevokeApiKeyRequest(name=name), metadata=md)
    await stub.RevokeApiKey(pb.RevokeApiKeyRequest(name=name), metadata=md)  # no-op
    # a refused mutation rolls back and records nothing
    await _fails(
        stub.RotateApiKey(pb.RotateApiKeyRequest(name=name), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "KEY_REVOKED",
    )
    # an API-key caller is recorded as the key
    other = await _create(ks)
    await stub.RevokeApiKey(
        pb.RevokeApiKeyRequest(name=other.api_key.name),
        metadata=ks.md("alice", key_scopes=("keys:write",)),
    )

    events = await ks.audit()
    assert [e.action for e in events] == [
        "apiKey.create",
        "apiKey.update",
        "apiKey.rotate",
        "apiKey.delete",
        "apiKey.undelete",
        "apiKey.revoke",
        "apiKey.create",
        "apiKey.revoke",
    ]
    first = events[0]
    assert (first.workspace_id, first.actor, first.target, first.client_ip) == (
        "ws_a",
        "user:alice",
        name,
        "198.51.100.7",
    )
    assert first.request_id and first.metadata["environment"] == "live"
    assert events[1].metadata == {"fields": "display_name,scopes", "scopes": "keys:read,keys:write"}
    assert events[2].metadata["grace_seconds"] == "600"
    assert events[3].metadata["purge_time"] == format_time(ks.clock.now() + dt.timedelta(days=30))
    assert events[-1].actor == "apiKey:kx"

    payloads = _payloads(events)
    leaks = _secret_forms(created.key, rotated.key, other.key)
    leaks += _digest_forms(ks, created.key, rotated.key, other.key)
    assert not [f for f in leaks if f in payloads]
    assert created.api_key.prefix not in {v for e in events for v in e.metadata.values()}
    # the relay resends after a crash between send and mark; the sink keeps each event once
    async with ks.engine.begin() as conn:
        await conn.execute(text("UPDATE keys_audit_outbox SET sent_at = NULL"))
    assert len(await ks.audit()) == len(events) and await _unsent(ks) == 0


async def test_refusals_of_known_keys_are_recorded_at_most_once_a_minute(
    keys_server: KeysServer,
) -> None:
    ks = keys_server
    created = await _create(ks)
    before = len(await ks.audit())
    await _verify(ks, created.key)  # a success writes nothing
    await _fails(_verify(ks, "rg_live_" + "A" * 43 + "x"), grpc.StatusCode.UNAUTHENTICATED)
    for _ in range(5):
        await _fails(
            _verify(ks, created.key, scope="keys:write"), grpc.StatusCode.PERMISSION_DENIED
        )
    await _fails(
        _verify(ks, created.key, origin="https://evil.example"), grpc.StatusCode.PERMISSION_DENIED
    )
    ks.clock.advance(seconds=59)
    await _fails(_verify(ks, created.key, scope="keys:write"), grpc.StatusCode.PERMISSION_DENIED)
    ks.clock.advance(seconds=1)
    await _fails(_verify(ks, created.key, scope="keys:write"), grpc.StatusCode.PERMISSION_DENIED)
    await ks.stub().RevokeApiKey(
        pb.RevokeApiKeyRequest(name=created.api_key.name), metadata=ks.md("alice")
    )
    for _ in range(3):
        await _fails(_verify(ks, created.key), grpc.StatusCode.UNAUTHENTICATED, "KEY_REVOKED")

    events = (await ks.audit())[before:]
    denials = [(e.action, e.outcome.value, e.metadata["reason"]) for e in events if e.metadata]
    assert denials == [
        ("apiKey.verify", "denied", "SCOPE_NOT_GRANTED"),
        ("apiKey.verify", "denied", "ORIGIN_NOT_ALLOWED"),
        ("apiKey.verify", "denied", "SCOPE_NOT_GRANTED"),
        ("apiKey.verify", "denied", "KEY_REVOKED"),
    ]
    scope_denial = events[0]
    assert scope_denial.actor == f"apiKey:{created.api_key.name.rsplit('/', 1)[1]}"
    assert scope_denial.client_ip == "203.0.113.5"
    assert scope_denial.metadata["required_scope"] == "keys:write"
    assert [e.action for e in events].count("apiKey.revoke") == 1
    assert not [f for f in _secret_forms(created.key) if f in _payloads(events)]


async def test_purge_destroys_the_digests_and_keeps_a_tombstone(keys_server: KeysServer) -> None:
    ks, stub = keys_server, keys_server.stub()
    md = ks.md("alice")
    kept = await _create(ks)
    created = await _create(ks, display_name="Old CI")
    name = created.api_key.name
    key_id = name.rsplit("/", 1)[1]
    rotated = await stub.RotateApiKey(
        pb.RotateApiKeyRequest(name=name, grace_period=duration_pb2.Duration(seconds=3600)),
        metadata=md,
    )
    await stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=name), metadata=md)
    ks.clock.advance(days=29)
    assert await ks.retention.purge_expired() == []
    ks.clock.advance(days=1)
    assert await ks.retention.purge_expired() == [key_id]
    assert await ks.retention.purge_expired() == []

    async with ks.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT workspace_id, name, display_prefix, created_by, created_at, "
                    "deleted_at, purged_at, secret_digest, previous_digest FROM api_keys "
                    "WHERE id = :id"
                ),
                {"id": key_id},
            )
        ).one()
        table = (await conn.execute(text("SELECT * FROM api_keys"))).all()
    assert row[:4] == ("ws_a", "Old CI", rotated.api_key.prefix, "alice")
    assert None not in row[4:7] and row[7] is None and row[8] is None
    dump = repr([[v.hex() if isinstance(v, bytes) else v for v in r] for r in table])
    assert not [f for f in _digest_forms(ks, created.key, rotated.key) if f in dump]
    assert [f for f in _digest_forms(ks, kept.key) if f in dump]  # the live key still has its own

    events = await ks.audit()
    purge_event = events[-1]
    assert (purge_event.action, purge_event.actor, purge_event.target) == (
        "apiKey.purge",
        "system",
        name,
    )
    assert not [f for f in _digest_forms(ks, created.key, rotated.key) if f in _payloads(events)]

    # NOT_FOUND / KEY_PURGED to whoever could see it; KEY_NOT_FOUND to anyone else
    for call in (
        stub.GetApiKey(pb.GetApiKeyRequest(name=name), metadata=md),
        stub.UndeleteApiKey(pb.UndeleteApiKeyRequest(name=name), metadata=md),
        stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=name), metadata=md),
        stub.GetApiKey(pb.GetApiKeyRequest(name=name), metadata=ks.md("ada", role=ADMIN)),
    ):
        await _fails(call, grpc.StatusCode.NOT_FOUND, "KEY_PURGED")
    await _fails(
        stub.GetApiKey(pb.GetApiKeyRequest(name=name), metadata=ks.md("bob")),
        grpc.StatusCode.NOT_FOUND,
        "KEY_NOT_FOUND",
    )
    for secret in (created.key, rotated.key):
        await _fails(_verify(ks, secret), grpc.StatusCode.UNAUTHENTICATED, "KEY_NOT_FOUND")
    listed = await stub.ListApiKeys(
        pb.ListApiKeysRequest(parent="workspaces/ws_a", show_deleted=True), metadata=md
    )
    assert [k.name for k in listed.api_keys] == [kept.api_key.name]
    await _verify(ks, kept.key)


async def test_undelete_after_the_window_is_refused_before_the_job_runs(
    keys_server: KeysServer,
) -> None:
    ks, stub, md = keys_server, keys_server.stub(), keys_server.md("alice")
    created = await _create(ks)
    await stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=created.api_key.name), metadata=md)
    ks.clock.advance(days=30)
    await _fails(
        stub.UndeleteApiKey(pb.UndeleteApiKeyRequest(name=created.api_key.name), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "KEY_PURGED",
    )


async def test_purge_job_on_the_command_line_and_in_process(keys_server: KeysServer) -> None:
    ks, stub, md = keys_server, keys_server.stub(), keys_server.md("alice")
    ks.clock.set(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))  # long enough ago for any window
    first = await _create(ks)
    await stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=first.api_key.name), metadata=md)
    await ks.audit()  # everything so far is relayed
    # the command line, with the system clock and the default window; the workspaces service
    # is unreachable, so the purge event stays in the outbox for the server's relay
    env = {
        **os.environ,
        "RAILGUARD_DATABASE_URL": ks.settings.database_url,
        "RAILGUARD_CERTS_DIR": str(ks.pki),
        "RAILGUARD_WORKSPACES_ADDR": "127.0.0.1:1",
        "RAILGUARD_KEYS_PEPPERS": PEPPERS,
        "RAILGUARD_LOG_LEVEL": "ERROR",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "keys_service", "purge"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "purged 1 API key(s)" in done.stdout
    assert await _unsent(ks) == 1

    # the job in process, with an injected clock and RAILGUARD_KEYS_RETENTION_DAYS
    ks.clock.set(dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    second = await _create(ks)
    await stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=second.api_key.name), metadata=md)
    settings = settings_for(
        "keys",
        ks.pki,
        ks.settings.database_url,
        {"RAILGUARD_WORKSPACES_ADDR": "127.0.0.1:1", "RAILGUARD_KEYS_RETENTION_DAYS": "7"},
    )
    clock = FakeClock(dt.datetime(2024, 1, 7, 23, tzinfo=dt.UTC))
    assert await purge(settings, clock) == []
    clock.advance(hours=1)
    assert await purge(settings, clock) == [second.api_key.name.rsplit("/", 1)[1]]
    async with ks.engine.connect() as conn:
        digests = (await conn.execute(text("SELECT secret_digest FROM api_keys"))).scalars().all()
        query = text("SELECT payload FROM keys_audit_outbox WHERE sent_at IS NULL ORDER BY seq")
        unsent = [json.loads(p) for p in (await conn.execute(query)).scalars().all()]
    assert digests == [None, None]
    assert [(e["action"], e["target"]) for e in unsent] == [
        ("apiKey.purge", first.api_key.name),
        ("apiKey.create", second.api_key.name),
        ("apiKey.delete", second.api_key.name),
        ("apiKey.purge", second.api_key.name),
    ]
