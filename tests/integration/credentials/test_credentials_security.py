"""The vault's promises under attack and failure: no plaintext at rest or in any output, no
ciphertext replay, fail closed when the key manager is down, rotation and rewrap."""

from __future__ import annotations

import base64
import io
import logging
from typing import Any

import asyncpg
import grpc
import pytest
from credentials_service.__main__ import rewrap
from google.protobuf import field_mask_pb2, struct_pb2
from railguard.access.v1 import access_pb2
from railguard.credentials.v1 import credentials_service_pb2 as pb
from servicekit.db import dispose_engine
from servicekit.logs import JsonFormatter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from .conftest import CredentialsServer, error_info, md
from .test_credentials_api import OPENAI, create, fails

SECRET = "sk-proj-ZqX7vN2pL9sKdR4tYwE6mB1cHfJ8gA3uQoI5nV0xT-UNIQUE-Wq8r"
REPLACEMENT = "sk-ant-api03-Mn4bV7cX1zL6kJ9hG2fD5sA8pO3iU0yT-REPLACED-z9"
TABLES = ("credentials", "webhook_triggers", "webhook_deliveries")


async def execute(srv: CredentialsServer, sql: str, **params: Any) -> list[Any]:
    engine = create_async_engine(srv.settings.database_url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        await dispose_engine(engine)


async def database_dump(srv: CredentialsServer) -> bytes:
    """Every byte the database holds: the SQLite files (WAL included) or every PostgreSQL row."""
    files = srv.sqlite_files()
    if files:
        return b"".join(p.read_bytes() for p in files)
    url = srv.settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url)
    try:
        tables = [
            r[0]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        ]
        assert set(TABLES) <= set(tables)
        dump = []
        for table in tables:
            for row in await conn.fetch(f'SELECT * FROM "{table}"'):  # noqa: S608 - catalog names
                dump.append(repr(tuple(row)))
        return "\n".join(dump).encode()
    finally:
        await conn.close()


def forms(secret: str) -> list[bytes]:
    raw = secret.encode()
    return [raw, base64.b64encode(raw), base64.urlsafe_b64encode(raw).rstrip(b"=")]


async def test_plaintext_appears_nowhere(
    credentials_server: CredentialsServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    srv, stub = credentials_server, credentials_server.stub()
    outputs: list[bytes] = []
    created = await create(srv, SECRET, request_id="r1")
    outputs.append(created.SerializeToString())
    outputs.append((await create(srv, SECRET, request_id="r1")).SerializeToString())
    updated = await stub.UpdateCredential(
        pb.UpdateCredentialRequest(
            credential=pb.Credential(name=created.name, value=REPLACEMENT, display_name="A"),
            update_mask=field_mask_pb2.FieldMask(paths=["value", "display_name"]),
        ),
        metadata=md(),
    )
    outputs.append(updated.SerializeToString())
    # the one response allowed to carry the plaintext: the runtime's
    used = await srv.stub("runtime").UseCredential(
        pb.UseCredentialRequest(name=created.name), metadata=md()
    )
    assert used.value == REPLACEMENT
    trigger = await stub.CreateWebhookTrigger(
        pb.CreateWebhookTriggerRequest(
            parent="workspaces/ws_a", webhook_trigger=pb.WebhookTrigger(display_name="hook")
        ),
        metadata=md(),
    )
    rotated = await stub.RotateWebhookTriggerToken(
        pb.RotateWebhookTriggerTokenRequest(name=trigger.webhook_trigger.name), metadata=md()
    )
    tokens = [trigger.token, rotated.token]
    trigger_id = trigger.webhook_trigger.name.rsplit("/", 1)[1]
    delivered = await stub.DeliverWebhook(
        pb.DeliverWebhookRequest(
            trigger_id=trigger_id, token=rotated.token, payload=struct_pb2.Struct()
        ),
        metadata=md(ws="", role=access_pb2.ROLE_UNSPECIFIED, client_ip="198.51.100.7"),
    )
    outputs.append(delivered.SerializeToString())
    for call in (
        stub.GetCredential(pb.GetCredentialRequest(name=created.name), metadata=md()),
        stub.ListCredentials(
            pb.ListCredentialsRequest(parent="workspaces/ws_a", show_deleted=True), metadata=md()
        ),
        stub.GetWebhookTrigger(
            pb.GetWebhookTriggerRequest(name=trigger.webhook_trigger.name), metadata=md()
        ),
        stub.ListWebhookTriggers(
            pb.ListWebhookTriggersRequest(parent="workspaces/ws_a"), metadata=md()
        ),
        stub.ListWebhookDeliveries(
            pb.ListWebhookDeliveriesRequest(parent=trigger.webhook_trigger.name), metadata=md()
        ),
        stub.DeleteCredential(pb.DeleteCredentialRequest(name=created.name), metadata=md()),
    ):
        outputs.append((await call).SerializeToString())
    # errors that handle the secrets: a wrong-format value, an old token, a token on the wrong id
    errors: list[str] = []
    for call in (
        create(srv, SECRET, provider="anthropic"),
        create(srv, SECRET + "\x01", provider="generic"),
        stub.DeliverWebhook(
            pb.DeliverWebhookRequest(trigger_id=trigger_id, token=trigger.token), metadata=md()
        ),
        stub.DeliverWebhook(
            pb.DeliverWebhookRequest(trigger_id="other", token=rotated.token), metadata=md()
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        errors.append(repr(err.value) + str(err.value.trailing_metadata()))

    formatter = JsonFormatter("credentials")
    logs = "\n".join(formatter.format(r) for r in caplog.records) + caplog.text
    dump = await database_dump(srv)
    assert b"vault:v1:" in dump  # the dump is real and holds the ciphertexts
    for secret in (SECRET, REPLACEMENT, *tokens):
        for form in forms(secret):
            assert form not in dump, "plaintext in the database"
            assert all(form not in out for out in outputs), "plaintext in a response"
            assert form.decode() not in logs, "plaintext in the logs"
            assert all(form.decode() not in e for e in errors), "plaintext in an error"
    assert created.masked_value in logs or "credential.created" in logs


async def test_a_ciphertext_copied_onto_another_record_does_not_decrypt(
    credentials_server: CredentialsServer,
) -> None:
    srv = credentials_server
    a = (await create(srv, SECRET)).name.rsplit("/", 1)[1]
    b = (await create(srv, OPENAI)).name.rsplit("/", 1)[1]
    c = (await create(srv, OPENAI, ws="ws_b")).name.rsplit("/", 1)[1]
    [(stolen,)] = await execute(srv, "SELECT ciphertext FROM credentials WHERE id = :id", id=a)
    for victim, ws in ((b, "ws_a"), (c, "ws_b")):
        await execute(
            srv, "UPDATE credentials SET ciphertext = :c WHERE id = :id", c=stolen, id=victim
        )
        code, reason, _ = await fails(
            srv.stub("runtime").UseCredential(
                pb.UseCredentialRequest(name=f"workspaces/{ws}/credentials/{victim}"),
                metadata=md(ws=ws),
            )
        )
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "KMS_CONTEXT_MISMATCH")
    used = await srv.stub("runtime").UseCredential(
        pb.UseCredentialRequest(name=f"workspaces/ws_a/credentials/{a}"), metadata=md()
    )
    assert used.value == SECRET


async def count_rows(srv: CredentialsServer) -> int:
    rows = await execute(
        srv, "SELECT (SELECT COUNT(*) FROM credentials) + (SELECT COUNT(*) FROM webhook_triggers)"
    )
    return int(rows[0][0])


@pytest.mark.parametrize("backend", ["vault"])
@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        ("sealed", "KMS_UNAVAILABLE"),
        ("denied", "KMS_PERMISSION_DENIED"),
        ("down", "KMS_UNAVAILABLE"),
    ],
)
async def test_vault_failure_fails_closed_and_stores_nothing(
    credentials_server: CredentialsServer, failure: str, reason: str
) -> None:
    srv, vault = credentials_server, credentials_server.vault
    assert vault is not None
    existing = await create(srv, OPENAI)
    if failure == "sealed":
        vault.sealed = True
    elif failure == "denied":
        vault.deny = True
    else:
        vault.stop()
    for call in (
        create(srv, SECRET),
        srv.stub().CreateWebhookTrigger(
            pb.CreateWebhookTriggerRequest(
                parent="workspaces/ws_a", webhook_trigger=pb.WebhookTrigger(display_name="h")
            ),
            metadata=md(),
        ),
        srv.stub().UpdateCredential(
            pb.UpdateCredentialRequest(
                credential=pb.Credential(name=existing.name, value=SECRET),
                update_mask=field_mask_pb2.FieldMask(paths=["value"]),
            ),
            metadata=md(),
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        code, got, _ = error_info(err.value)
        assert (code, got) == (grpc.StatusCode.UNAVAILABLE, reason)
        assert "nothing was stored" in (err.value.details() or "")
    code, got, _ = await fails(
        srv.stub("runtime").UseCredential(
            pb.UseCredentialRequest(name=existing.name), metadata=md()
        )
    )
    assert (code, got) == (grpc.StatusCode.UNAVAILABLE, reason)
    assert await count_rows(srv) == 1
    got_back = await srv.stub().GetCredential(
        pb.GetCredentialRequest(name=existing.name), metadata=md()
    )
    assert got_back.masked_value == existing.masked_value  # reads need no key manager


class _CrashAfter(io.StringIO):
    """A progress stream that dies after some writes: an interrupted rewrap run."""

    def __init__(self, writes: int) -> None:
        super().__init__()
        self.left = writes

    def write(self, s: str) -> int:
        self.left -= 1
        if self.left < 0:
            raise RuntimeError("interrupted")
        return super().write(s)


async def test_rotate_rewrap_and_retire_old_versions(
    credentials_server: CredentialsServer,
) -> None:
    srv = credentials_server
    names = [(await create(srv, f"sk-proj-{i:02d}" + "a" * 30 + f"{i:04d}")).name for i in range(5)]
    hook = await srv.stub().CreateWebhookTrigger(
        pb.CreateWebhookTriggerRequest(
            parent="workspaces/ws_a", webhook_trigger=pb.WebhookTrigger(display_name="h")
        ),
        metadata=md(),
    )
    first = names[0].rsplit("/", 1)[1]
    [(old_ciphertext,)] = await execute(
        srv, "SELECT ciphertext FROM credentials WHERE id = :id", id=first
    )
    assert old_ciphertext.startswith("vault:v1:")

    # an interrupted run: the key is rotated, one batch of two is rewrapped, the floor stays
    with pytest.raises(RuntimeError, match="interrupted"):
        await rewrap(srv.settings, 2, out=_CrashAfter(1))
    versions = await execute(srv, "SELECT key_version FROM credentials ORDER BY id")
    assert sorted(v for (v,) in versions) == [1, 1, 1, 2, 2]

    out = io.StringIO()
    report = await rewrap(srv.settings, 2, resume=True, out=out)
    assert (report.key_version, report.rewrapped, report.failed) == (2, 4, 0)
    assert report.min_decryption_version == 2
    progress = out.getvalue()
    assert "credentials" in progress and "[" + "#" * 30 + "] 3/3" in progress
    assert "webhook_triggers" in progress

    for i, name in enumerate(names):
        got = await srv.stub().GetCredential(pb.GetCredentialRequest(name=name), metadata=md())
        assert got.key_version == 2
        used = await srv.stub("runtime").UseCredential(
            pb.UseCredentialRequest(name=name), metadata=md()
        )
        assert used.value == f"sk-proj-{i:02d}" + "a" * 30 + f"{i:04d}"
    trigger_id = hook.webhook_trigger.name.rsplit("/", 1)[1]
    [(trigger_version,)] = await execute(
        srv, "SELECT key_version FROM webhook_triggers WHERE id = :id", id=trigger_id
    )
    assert trigger_version == 2
    await srv.stub().DeliverWebhook(
        pb.DeliverWebhookRequest(trigger_id=trigger_id, token=hook.token), metadata=md()
    )

    # a ciphertext sealed under the retired version is refused, clearly
    await execute(
        srv, "UPDATE credentials SET ciphertext = :c WHERE id = :id", c=old_ciphertext, id=first
    )
    code, reason, _ = await fails(
        srv.stub("runtime").UseCredential(pb.UseCredentialRequest(name=names[0]), metadata=md())
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "KMS_KEY_VERSION_RETIRED")

    # a second full run rotates again and leaves the unreadable row behind, floor unchanged
    report = await rewrap(srv.settings, 100, out=io.StringIO())
    assert (report.key_version, report.rewrapped, report.failed) == (3, 5, 1)
    assert report.min_decryption_version == 2
