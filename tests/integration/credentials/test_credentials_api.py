"""Every credential RPC through a real mTLS server, on SQLite and PostgreSQL, with both key
managers: happy paths, role rules, isolation and bad input."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2
from railguard.access.v1 import access_pb2
from railguard.credentials.v1 import credentials_service_pb2 as pb

from .conftest import CredentialsServer, error_info, md

OPENAI = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCDxyz9"
USER, ADMIN, OWNER = access_pb2.ROLE_USER, access_pb2.ROLE_ADMIN, access_pb2.ROLE_OWNER


async def create(
    srv: CredentialsServer,
    value: str = OPENAI,
    provider: str = "openai",
    ws: str = "ws_a",
    role: int = ADMIN,
    **request: Any,
) -> pb.Credential:
    credential = pb.Credential(display_name="Prod OpenAI", provider=provider, value=value)
    response: pb.Credential = await srv.stub().CreateCredential(
        pb.CreateCredentialRequest(parent=f"workspaces/{ws}", credential=credential, **request),
        metadata=md(ws=ws, role=role),
    )
    return response


async def fails(call: Any) -> tuple[grpc.StatusCode, str, list[str]]:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return error_info(err.value)


async def test_create_returns_only_the_mask(credentials_server: CredentialsServer) -> None:
    created = await create(credentials_server)
    assert created.masked_value == "sk-proj-abc...xyz9"
    assert created.value == ""
    assert created.provider == "openai"
    assert created.key_version == 1
    assert created.state == pb.STATE_ACTIVE
    assert created.create_by == created.updated_by == "alice"
    assert created.name.startswith("workspaces/ws_a/credentials/")

    got = await credentials_server.stub().GetCredential(
        pb.GetCredentialRequest(name=created.name), metadata=md(role=USER)
    )
    assert got == created
    listed = await credentials_server.stub().ListCredentials(
        pb.ListCredentialsRequest(parent="workspaces/ws_a"), metadata=md(role=USER)
    )
    assert list(listed.credentials) == [created]


async def test_request_id_makes_create_idempotent(credentials_server: CredentialsServer) -> None:
    first = await create(credentials_server, request_id="req-1")
    again = await create(credentials_server, request_id="req-1")
    assert again.name == first.name
    listed = await credentials_server.stub().ListCredentials(
        pb.ListCredentialsRequest(parent="workspaces/ws_a"), metadata=md()
    )
    assert len(listed.credentials) == 1


async def test_list_is_paginated(credentials_server: CredentialsServer) -> None:
    names = {(await create(credentials_server)).name for _ in range(5)}
    seen: set[str] = set()
    token = ""
    pages = 0
    while True:
        page = await credentials_server.stub().ListCredentials(
            pb.ListCredentialsRequest(parent="workspaces/ws_a", page_size=2, page_token=token),
            metadata=md(),
        )
        seen |= {c.name for c in page.credentials}
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert seen == names and pages == 3


async def test_update_renames_and_replaces_the_value(
    credentials_server: CredentialsServer,
) -> None:
    created = await create(credentials_server)
    stub = credentials_server.stub()
    renamed = await stub.UpdateCredential(
        pb.UpdateCredentialRequest(
            credential=pb.Credential(name=created.name, display_name="Renamed"),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        metadata=md(user="bob"),
    )
    assert renamed.display_name == "Renamed" and renamed.masked_value == created.masked_value
    assert renamed.updated_by == "bob"
    new_value = "sk-proj-ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210qrst"
    replaced = await stub.UpdateCredential(
        pb.UpdateCredentialRequest(
            credential=pb.Credential(name=created.name, value=new_value),
            update_mask=field_mask_pb2.FieldMask(paths=["value"]),
        ),
        metadata=md(),
    )
    assert replaced.masked_value == "sk-proj-ZYX...qrst"
    used = await credentials_server.stub("runtime").UseCredential(
        pb.UseCredentialRequest(name=created.name), metadata=md(role=USER)
    )
    assert used.value == new_value

    code, reason, fields = await fails(
        stub.UpdateCredential(
            pb.UpdateCredentialRequest(
                credential=pb.Credential(name=created.name, provider="anthropic"),
                update_mask=field_mask_pb2.FieldMask(paths=["provider"]),
            ),
            metadata=md(),
        )
    )
    assert (code, reason, fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_UPDATE_MASK",
        ["update_mask"],
    )


async def test_delete_and_undelete(credentials_server: CredentialsServer) -> None:
    created = await create(credentials_server)
    stub = credentials_server.stub()
    deleted = await stub.DeleteCredential(
        pb.DeleteCredentialRequest(name=created.name), metadata=md()
    )
    assert deleted.state == pb.STATE_DELETED
    assert deleted.purge_time.ToSeconds() - deleted.delete_time.ToSeconds() == 30 * 86400
    listed = await stub.ListCredentials(
        pb.ListCredentialsRequest(parent="workspaces/ws_a"), metadata=md()
    )
    assert list(listed.credentials) == []
    with_deleted = await stub.ListCredentials(
        pb.ListCredentialsRequest(parent="workspaces/ws_a", show_deleted=True), metadata=md()
    )
    assert [c.name for c in with_deleted.credentials] == [created.name]
    code, reason, _ = await fails(
        credentials_server.stub("runtime").UseCredential(
            pb.UseCredentialRequest(name=created.name), metadata=md(role=USER)
        )
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "CREDENTIAL_NOT_FOUND")
    code, reason, _ = await fails(
        stub.UpdateCredential(
            pb.UpdateCredentialRequest(
                credential=pb.Credential(name=created.name, display_name="x"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            ),
            metadata=md(),
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "CREDENTIAL_DELETED")

    restored = await stub.UndeleteCredential(
        pb.UndeleteCredentialRequest(name=created.name), metadata=md()
    )
    assert restored.state == pb.STATE_ACTIVE and not restored.HasField("delete_time")
    used = await credentials_server.stub("runtime").UseCredential(
        pb.UseCredentialRequest(name=created.name), metadata=md(role=USER)
    )
    assert used.value == OPENAI


async def test_use_returns_plaintext_to_runtime_and_records_the_use(
    credentials_server: CredentialsServer, caplog: pytest.LogCaptureFixture
) -> None:
    created = await create(credentials_server)
    caplog.set_level("INFO", logger="credentials_service.audit")
    used = await credentials_server.stub("runtime").UseCredential(
        pb.UseCredentialRequest(name=created.name, purpose="run-42"), metadata=md(role=USER)
    )
    assert (used.value, used.provider, used.key_version) == (OPENAI, "openai", 1)
    got = await credentials_server.stub().GetCredential(
        pb.GetCredentialRequest(name=created.name), metadata=md()
    )
    assert got.HasField("last_used_time")
    [audit] = [r for r in caplog.records if r.getMessage() == "credential.used"]
    assert audit.__dict__["caller"] == "runtime" and audit.__dict__["purpose"] == "run-42"
    assert audit.__dict__["credential_id"] == created.name.rsplit("/", 1)[1]


@pytest.mark.parametrize("identity", ["edge", "keys", "workspaces", "outsider"])
async def test_use_is_refused_to_every_caller_but_the_runtime(
    credentials_server: CredentialsServer, identity: str
) -> None:
    created = await create(credentials_server)
    code, reason, _ = await fails(
        credentials_server.stub(identity).UseCredential(
            pb.UseCredentialRequest(name=created.name), metadata=md(role=OWNER)
        )
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CALLER_NOT_ALLOWED")


async def test_runtime_cannot_use_another_workspaces_credential(
    credentials_server: CredentialsServer,
) -> None:
    created = await create(credentials_server)
    other_ws = created.name.replace("ws_a", "ws_b")
    for name, ws in ((created.name, "ws_b"), (other_ws, "ws_b"), (created.name, "")):
        code, reason, _ = await fails(
            credentials_server.stub("runtime").UseCredential(
                pb.UseCredentialRequest(name=name), metadata=md(ws=ws)
            )
        )
        assert code == grpc.StatusCode.NOT_FOUND, (name, ws, reason)


async def test_another_workspaces_credential_is_not_found(
    credentials_server: CredentialsServer,
) -> None:
    created = await create(credentials_server)
    stub = credentials_server.stub()
    missing = created.name.rsplit("/", 1)[0] + "/nope"
    other = created.name.replace("ws_a", "ws_b")
    answers = set()
    for name, ws in ((created.name, "ws_b"), (other, "ws_b"), (missing, "ws_a")):
        code, reason, _ = await fails(
            stub.GetCredential(pb.GetCredentialRequest(name=name), metadata=md(ws=ws))
        )
        answers.add((code, reason))
        code, reason, _ = await fails(
            stub.DeleteCredential(pb.DeleteCredentialRequest(name=name), metadata=md(ws=ws))
        )
        answers.add((code, reason))
    assert answers == {(grpc.StatusCode.NOT_FOUND, "NOT_FOUND")} | {
        (grpc.StatusCode.NOT_FOUND, "CREDENTIAL_NOT_FOUND")
    }
    listed = await stub.ListCredentials(
        pb.ListCredentialsRequest(parent="workspaces/ws_b"), metadata=md(ws="ws_b")
    )
    assert list(listed.credentials) == []


async def test_role_rules(credentials_server: CredentialsServer) -> None:
    created = await create(credentials_server)
    stub = credentials_server.stub()
    name = created.name
    mask = field_mask_pb2.FieldMask(paths=["display_name"])
    writes = [
        stub.CreateCredential(
            pb.CreateCredentialRequest(
                parent="workspaces/ws_a",
                credential=pb.Credential(display_name="x", provider="generic", value="v" * 20),
            ),
            metadata=md(role=USER),
        ),
        stub.UpdateCredential(
            pb.UpdateCredentialRequest(
                credential=pb.Credential(name=name, display_name="x"), update_mask=mask
            ),
            metadata=md(role=USER),
        ),
        stub.DeleteCredential(pb.DeleteCredentialRequest(name=name), metadata=md(role=USER)),
        stub.UndeleteCredential(pb.UndeleteCredentialRequest(name=name), metadata=md(role=USER)),
    ]
    for call in writes:
        assert (await fails(call))[:2] == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_TOO_LOW")
    for role in (USER, ADMIN, OWNER):
        got = await stub.GetCredential(pb.GetCredentialRequest(name=name), metadata=md(role=role))
        assert got.masked_value == created.masked_value and got.value == ""
    assert (await create(credentials_server, role=OWNER)).masked_value
    code, reason, _ = await fails(
        stub.GetCredential(
            pb.GetCredentialRequest(name=name), metadata=md(role=access_pb2.ROLE_UNSPECIFIED)
        )
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_TOO_LOW")


@pytest.mark.parametrize(
    ("provider", "value", "reason", "field"),
    [
        ("openai", "", "CREDENTIAL_VALUE_EMPTY", "credential.value"),
        ("generic", "   ", "CREDENTIAL_VALUE_EMPTY", "credential.value"),
        ("generic", "x" * 8193, "CREDENTIAL_VALUE_TOO_LARGE", "credential.value"),
        ("generic", "abc\x00def", "CREDENTIAL_VALUE_INVALID", "credential.value"),
        (
            "openai",
            "pk-live-abcdefghijklmnopqrstuvwxyz",
            "CREDENTIAL_FORMAT_MISMATCH",
            "credential.value",
        ),
        ("anthropic", OPENAI, "CREDENTIAL_FORMAT_MISMATCH", "credential.value"),
        ("google", "AIza-too-short", "CREDENTIAL_FORMAT_MISMATCH", "credential.value"),
        ("mistral", "whatever-value-here", "UNKNOWN_PROVIDER", "credential.provider"),
        ("", OPENAI, "UNKNOWN_PROVIDER", "credential.provider"),
    ],
)
async def test_bad_input_is_invalid_argument_with_a_field_violation(
    credentials_server: CredentialsServer, provider: str, value: str, reason: str, field: str
) -> None:
    code, got_reason, fields = await fails(create(credentials_server, value, provider))
    assert (code, got_reason, fields) == (grpc.StatusCode.INVALID_ARGUMENT, reason, [field])


async def test_bad_names_and_display_names(credentials_server: CredentialsServer) -> None:
    stub = credentials_server.stub()
    code, reason, fields = await fails(
        stub.GetCredential(pb.GetCredentialRequest(name="credentials/x"), metadata=md())
    )
    assert (code, reason, fields) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_NAME", ["name"])
    code, reason, fields = await fails(
        stub.CreateCredential(
            pb.CreateCredentialRequest(
                parent="workspaces/ws_a",
                credential=pb.Credential(display_name="", provider="openai", value=OPENAI),
            ),
            metadata=md(),
        )
    )
    assert (code, reason, fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_DISPLAY_NAME",
        ["credential.display_name"],
    )
