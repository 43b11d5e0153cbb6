"""DESIGN R16 for the vault: one audit event per mutation in the same transaction (outbox), no
secret in any event, and the purge job that destroys secret material but keeps tombstones.

The server here is the production composition root; its relay cannot reach a workspaces service,
so every event waits in ``credentials_audit_outbox``, where these tests read it. The relay into
a real workspaces service is tested in ``test_credentials_relay.py``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import subprocess
import sys
from typing import Any

from credentials_service.__main__ import purge
from google.protobuf import field_mask_pb2
from railguard.credentials.v1 import credentials_service_pb2 as pb
from servicekit import Settings
from testkit import FakeClock
from testkit import test_settings as settings_for

from .conftest import CredentialsServer, md
from .test_credentials_api import create, fails
from .test_credentials_security import REPLACEMENT, SECRET, execute
from .test_webhooks import create_trigger, deliver, trigger_id


async def outbox(srv: CredentialsServer) -> list[dict[str, Any]]:
    rows = await execute(srv, "SELECT payload FROM credentials_audit_outbox ORDER BY seq")
    return [json.loads(r[0]) for r in rows]


def secret_forms(*secrets: str | bytes) -> list[str]:
    """Every form a secret could take in a payload: raw, base64, base64url, hex."""
    out: list[str] = []
    for secret in secrets:
        raw = secret.encode() if isinstance(secret, str) else secret
        if isinstance(secret, str):
            out.append(secret)
        out += [
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).rstrip(b"=").decode(),
            raw.hex(),
        ]
    return out


TABLES = ("credentials", "webhook_triggers", "webhook_deliveries", "credentials_audit_outbox")


async def table_dump(srv: CredentialsServer) -> str:
    """Every row of every table of the service, binary columns as hex (a logical dump)."""
    lines = []
    for table in TABLES:
        for row in await execute(srv, f"SELECT * FROM {table}"):  # noqa: S608 - fixed names
            lines.append(repr([v.hex() if isinstance(v, bytes | memoryview) else v for v in row]))
    return "\n".join(lines)


def purge_settings(srv: CredentialsServer, **extra: str) -> Settings:
    """The server's settings for the purge job; the workspaces service is unreachable."""
    env = {
        "RAILGUARD_CREDENTIALS_WEBHOOK_PEPPER": srv.settings.get("CREDENTIALS_WEBHOOK_PEPPER"),
        "RAILGUARD_WORKSPACES_ADDR": "127.0.0.1:1",
        **extra,
    }
    return settings_for("credentials", srv.pki, srv.settings.database_url, env)


async def secret_columns(srv: CredentialsServer) -> list[str]:
    """Every ciphertext, mask and token hash (as hex and base64) the tables hold right now."""
    out: list[str] = []
    for c, m in await execute(srv, "SELECT ciphertext, masked_value FROM credentials"):
        out += [v for v in (c, m) if v]
    for c, h in await execute(srv, "SELECT token_ciphertext, token_hash FROM webhook_triggers"):
        if c:
            out.append(c)
        if h:
            out += [bytes(h).hex(), base64.b64encode(bytes(h)).decode()]
    return out


async def test_every_mutation_records_one_event_without_secrets(
    credentials_server: CredentialsServer,
) -> None:
    srv, stub = credentials_server, credentials_server.stub()
    admin = md(client_ip="198.51.100.7")
    created = await create(srv, SECRET, request_id="r1")
    again = await create(srv, SECRET, request_id="r1")  # an idempotent retry records nothing
    assert again.name == created.name
    await stub.UpdateCredential(
        pb.UpdateCredentialRequest(
            credential=pb.Credential(name=created.name, value=REPLACEMENT, provider="anthropic"),
            update_mask=field_mask_pb2.FieldMask(paths=["value"]),
        ),
        metadata=admin,
    )
    await srv.stub("runtime").UseCredential(
        pb.UseCredentialRequest(name=created.name, purpose="run rg_live_looks-like-a-key"),
        metadata=md(),
    )
    await stub.DeleteCredential(pb.DeleteCredentialRequest(name=created.name), metadata=admin)
    await stub.DeleteCredential(pb.DeleteCredentialRequest(name=created.name), metadata=admin)
    await stub.UndeleteCredential(pb.UndeleteCredentialRequest(name=created.name), metadata=admin)
    trigger = await create_trigger(srv)
    tid = trigger_id(trigger.webhook_trigger.name)
    rotated = await stub.RotateWebhookTriggerToken(
        pb.RotateWebhookTriggerTokenRequest(name=trigger.webhook_trigger.name), metadata=admin
    )
    await deliver(srv, tid, rotated.token, ip="203.0.113.50", n=1)
    await stub.DeleteWebhookTrigger(
        pb.DeleteWebhookTriggerRequest(name=trigger.webhook_trigger.name), metadata=admin
    )
    # a refused mutation rolls back and records nothing
    code, reason, _ = await fails(
        stub.RotateWebhookTriggerToken(
            pb.RotateWebhookTriggerTokenRequest(name=trigger.webhook_trigger.name), metadata=admin
        )
    )
    assert reason == "TRIGGER_DELETED"

    events = await outbox(srv)
    assert [e["action"] for e in events] == [
        "credential.create",
        "credential.update",
        "credential.use",
        "credential.delete",
        "credential.undelete",
        "webhookTrigger.create",
        "webhookTrigger.rotateToken",
        "webhookTrigger.deliver",
        "webhookTrigger.delete",
    ]
    by_action = {e["action"]: e for e in events}
    assert {e["workspace_id"] for e in events} == {"ws_a"}
    assert by_action["credential.update"]["actor"] == "user:alice"
    assert by_action["credential.update"]["client_ip"] == "198.51.100.7"
    assert by_action["credential.update"]["target"] == created.name
    assert by_action["credential.update"]["request_id"]  # the call's request id
    assert by_action["credential.update"]["metadata"]["fields"] == "value"
    use = by_action["credential.use"]["metadata"]
    assert use["caller"] == "runtime" and use["purpose"] == "[redacted]"
    delivery = by_action["webhookTrigger.deliver"]
    assert delivery["actor"] == f"webhookTrigger:{tid}"
    assert delivery["client_ip"] == "203.0.113.50"
    assert by_action["credential.delete"]["metadata"]["purge_time"].endswith("Z")

    payloads = json.dumps(events, ensure_ascii=False)
    leaks = secret_forms(SECRET, REPLACEMENT, trigger.token, rotated.token)
    leaks += await secret_columns(srv)
    leaks.append(created.masked_value)
    assert not [f for f in leaks if f in payloads]
    assert "vault:v" not in payloads and "rgwh_" not in payloads


async def test_purge_destroys_secret_material_and_keeps_tombstones(
    credentials_server: CredentialsServer,
) -> None:
    srv, stub, admin = credentials_server, credentials_server.stub(), md()
    kept = await create(srv, REPLACEMENT, provider="anthropic")  # never deleted: untouched
    doomed = await create(srv, SECRET)
    trigger = await create_trigger(srv)
    tname = trigger.webhook_trigger.name
    await deliver(srv, trigger_id(tname), trigger.token, n=1)
    deleted = await stub.DeleteCredential(
        pb.DeleteCredentialRequest(name=doomed.name), metadata=admin
    )
    await stub.DeleteWebhookTrigger(pb.DeleteWebhookTriggerRequest(name=tname), metadata=admin)
    secrets_before = await secret_columns(srv)
    doomed_secrets = [s for s in secrets_before if s not in await secret_columns_of(srv, kept.name)]
    assert len(doomed_secrets) == 5  # ciphertext + mask; token ciphertext + hash (hex, base64)

    start = deleted.delete_time.ToDatetime(tzinfo=dt.UTC)
    settings = purge_settings(srv)
    assert await purge(settings, FakeClock(start + dt.timedelta(days=29))) == ([], [])
    credentials, triggers = await purge(settings, FakeClock(start + dt.timedelta(days=30, hours=1)))
    assert (credentials, triggers) == ([doomed.name.rsplit("/", 1)[1]], [trigger_id(tname)])
    assert await purge(settings, FakeClock(start + dt.timedelta(days=31))) == ([], [])

    # tombstones: the rows are still there, the secret columns are empty
    (row,) = await execute(
        srv,
        "SELECT display_name, provider, ciphertext, masked_value, created_at, deleted_at, "
        "purged_at FROM credentials WHERE id = :id",
        id=doomed.name.rsplit("/", 1)[1],
    )
    assert row[:4] == ("Prod OpenAI", "openai", None, "")
    assert all(v is not None for v in row[4:])
    (trow,) = await execute(
        srv,
        "SELECT display_name, token_ciphertext, token_hash, purged_at FROM webhook_triggers "
        "WHERE id = :id",
        id=trigger_id(tname),
    )
    assert trow[0] == "Deploys" and trow[1] is None and trow[2] is None and trow[3] is not None
    assert len(await execute(srv, "SELECT id FROM webhook_deliveries")) == 1
    dump = await table_dump(srv)
    assert not [s for s in doomed_secrets + secret_forms(SECRET, trigger.token) if s in dump]
    # the other credential is untouched
    assert (
        await srv.stub("runtime").UseCredential(
            pb.UseCredentialRequest(name=kept.name), metadata=md()
        )
    ).value == REPLACEMENT

    events = await outbox(srv)
    purges = [e for e in events if e["action"].endswith(".purge")]
    assert [(e["action"], e["actor"], e["target"]) for e in purges] == [
        ("credential.purge", "system", doomed.name),
        ("webhookTrigger.purge", "system", tname),
    ]
    assert not [s for s in doomed_secrets if s in json.dumps(events, ensure_ascii=False)]
    # the workspaces service was unreachable: the events wait for the server's relay
    unsent = await execute(
        srv, "SELECT count(*) FROM credentials_audit_outbox WHERE sent_at IS NULL"
    )
    assert unsent[0][0] == len(events)

    # a purged item is NOT_FOUND/…_PURGED to members, and cannot be restored or used
    for call in (
        stub.GetCredential(pb.GetCredentialRequest(name=doomed.name), metadata=admin),
        stub.UndeleteCredential(pb.UndeleteCredentialRequest(name=doomed.name), metadata=admin),
        stub.DeleteCredential(pb.DeleteCredentialRequest(name=doomed.name), metadata=admin),
        srv.stub("runtime").UseCredential(pb.UseCredentialRequest(name=doomed.name), metadata=md()),
    ):
        code, reason, _ = await fails(call)
        assert (code.name, reason) == ("NOT_FOUND", "CREDENTIAL_PURGED")
    code, reason, _ = await fails(
        stub.GetWebhookTrigger(pb.GetWebhookTriggerRequest(name=tname), metadata=admin)
    )
    assert (code.name, reason) == ("NOT_FOUND", "WEBHOOK_TRIGGER_PURGED")
    code, reason, _ = await fails(deliver(srv, trigger_id(tname), trigger.token))
    assert (code.name, reason) == ("NOT_FOUND", "WEBHOOK_TRIGGER_NOT_FOUND")
    # another workspace cannot tell a purged credential from a missing one
    other = doomed.name.replace("ws_a", "ws_b")
    code, reason, _ = await fails(
        stub.GetCredential(pb.GetCredentialRequest(name=other), metadata=md(ws="ws_b"))
    )
    assert reason == "CREDENTIAL_NOT_FOUND"
    listed = await stub.ListCredentials(
        pb.ListCredentialsRequest(parent="workspaces/ws_a", show_deleted=True), metadata=admin
    )
    assert [c.name for c in listed.credentials] == [kept.name]


async def secret_columns_of(srv: CredentialsServer, name: str) -> list[str]:
    (c, m) = (
        await execute(
            srv,
            "SELECT ciphertext, masked_value FROM credentials WHERE id = :id",
            id=name.rsplit("/", 1)[1],
        )
    )[0]
    return [c, m]


async def test_undelete_after_the_window_is_refused_before_the_job_runs(
    credentials_server: CredentialsServer,
) -> None:
    srv, stub = credentials_server, credentials_server.stub()
    created = await create(srv)
    await stub.DeleteCredential(pb.DeleteCredentialRequest(name=created.name), metadata=md())
    await execute(
        srv,
        "UPDATE credentials SET purge_at = :t WHERE id = :id",
        t=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
        id=created.name.rsplit("/", 1)[1],
    )
    code, reason, _ = await fails(
        stub.UndeleteCredential(pb.UndeleteCredentialRequest(name=created.name), metadata=md())
    )
    assert (code.name, reason) == ("FAILED_PRECONDITION", "CREDENTIAL_PURGED")


async def test_purge_command_line(credentials_server: CredentialsServer) -> None:
    srv = credentials_server
    created = await create(srv)
    await srv.stub().DeleteCredential(pb.DeleteCredentialRequest(name=created.name), metadata=md())
    cid = created.name.rsplit("/", 1)[1]
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    await execute(srv, "UPDATE credentials SET purge_at = :t WHERE id = :id", t=past, id=cid)
    env = {
        **os.environ,
        "RAILGUARD_DATABASE_URL": srv.settings.database_url,
        "RAILGUARD_CERTS_DIR": str(srv.pki),
        "RAILGUARD_STATE_DIR": str(srv.pki.parent / "state"),
        "RAILGUARD_WORKSPACES_ADDR": "127.0.0.1:1",
        "RAILGUARD_LOG_LEVEL": "ERROR",
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "credentials_service", "purge"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "purged 1 credential(s), 0 webhook trigger(s)" in done.stdout
    (row,) = await execute(
        srv, "SELECT ciphertext, purged_at FROM credentials WHERE id = :id", id=cid
    )
    assert row[0] is None and row[1] is not None
