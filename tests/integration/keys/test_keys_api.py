"""Every KeysService RPC through a real mTLS server on SQLite and PostgreSQL: happy and unhappy."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from keys_service.adapters.repository import SqlKeysUnitOfWork
from railguard.access.v1 import access_pb2
from railguard.keys.v1 import keys_service_pb2 as pb
from servicekit.db import create_engine, dispose_engine, session_factory
from sqlalchemy import text
from testkit.fakes import reason as _reason

from .conftest import KeysServer

USER, ADMIN = access_pb2.ROLE_USER, access_pb2.ROLE_ADMIN


async def _fails(call: Any, code: grpc.StatusCode, reason: str | None = None) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    if reason is not None:
        assert _reason(err.value) == reason


def _ts(value: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


async def _create(
    ks: KeysServer,
    user: str = "alice",
    ws: str = "ws_a",
    role: int = USER,
    **fields: Any,
) -> pb.CreateApiKeyResponse:
    api_key = pb.ApiKey(
        display_name=fields.pop("display_name", "CI"),
        environment=fields.pop("environment", pb.ENVIRONMENT_LIVE),
        scopes=fields.pop("scopes", ["keys:read"]),
        **fields,
    )
    request = pb.CreateApiKeyRequest(parent=f"workspaces/{ws}", api_key=api_key)
    response: pb.CreateApiKeyResponse = await ks.stub().CreateApiKey(
        request, metadata=ks.md(user, ws, role)
    )
    return response


async def _verify(
    ks: KeysServer, key: str, *, ip: str = "203.0.113.5", origin: str = "", scope: str = "keys:read"
) -> pb.VerifyApiKeyResponse:
    request = pb.VerifyApiKeyRequest(key=key, client_ip=ip, origin=origin, required_scope=scope)
    response: pb.VerifyApiKeyResponse = await ks.stub().VerifyApiKey(request)
    return response


# ---- CreateApiKey / GetApiKey / ListApiKeys ---------------------------------------------------


async def test_create_get_list(keys_server: KeysServer) -> None:
    created = await _create(keys_server, allowed_cidrs=["2001:db8::/32"])
    key = created.api_key
    assert created.key.startswith("rg_live_") and len(created.key) == 57
    assert key.name.startswith("workspaces/ws_a/apiKeys/")
    assert key.prefix == created.key[:12]
    assert key.state == pb.API_KEY_STATE_ACTIVE and key.created_by == "alice"
    md = keys_server.md("alice")
    got = await keys_server.stub().GetApiKey(pb.GetApiKeyRequest(name=key.name), metadata=md)
    assert got == key
    listed = await keys_server.stub().ListApiKeys(
        pb.ListApiKeysRequest(parent="workspaces/ws_a"), metadata=md
    )
    assert [k.name for k in listed.api_keys] == [key.name]


async def test_create_refuses_bad_input_and_excess_scopes(keys_server: KeysServer) -> None:
    await _fails(
        _create(keys_server, scopes=["keys:admin"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "SCOPE_INVALID",
    )
    await _fails(
        _create(keys_server, environment=pb.ENVIRONMENT_UNSPECIFIED),
        grpc.StatusCode.INVALID_ARGUMENT,
        "ENVIRONMENT_INVALID",
    )
    await _fails(
        _create(keys_server, scopes=["members:write"]),
        grpc.StatusCode.PERMISSION_DENIED,
        "SCOPE_EXCEEDS_CREATOR",
    )
    await _create(keys_server, "ada", role=ADMIN, scopes=["members:write"])
    # an API key acting for an Admin is still bounded by its own scopes
    robot = keys_server.md("ada", role=ADMIN, key_scopes=("keys:write",))
    request = pb.CreateApiKeyRequest(
        parent="workspaces/ws_a",
        api_key=pb.ApiKey(
            display_name="x", environment=pb.ENVIRONMENT_TEST, scopes=["members:write"]
        ),
    )
    await _fails(
        keys_server.stub().CreateApiKey(request, metadata=robot),
        grpc.StatusCode.PERMISSION_DENIED,
        "SCOPE_EXCEEDS_CREATOR",
    )


async def test_create_is_idempotent(keys_server: KeysServer) -> None:
    request = pb.CreateApiKeyRequest(
        parent="workspaces/ws_a",
        api_key=pb.ApiKey(display_name="x", environment=pb.ENVIRONMENT_TEST, scopes=["keys:read"]),
        request_id="req-42",
    )
    md = keys_server.md("alice")
    first = await keys_server.stub().CreateApiKey(request, metadata=md)
    again = await keys_server.stub().CreateApiKey(request, metadata=md)
    assert again.api_key.name == first.api_key.name
    assert first.key and again.key == ""


async def test_get_unhappy(keys_server: KeysServer) -> None:
    md = keys_server.md("alice")
    await _fails(
        keys_server.stub().GetApiKey(pb.GetApiKeyRequest(name="apiKeys/x"), metadata=md),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_NAME",
    )
    await _fails(
        keys_server.stub().GetApiKey(
            pb.GetApiKeyRequest(name="workspaces/ws_a/apiKeys/nope"), metadata=md
        ),
        grpc.StatusCode.NOT_FOUND,
        "KEY_NOT_FOUND",
    )


async def test_list_paginates_and_refuses_foreign_tokens(keys_server: KeysServer) -> None:
    for _ in range(3):
        await _create(keys_server)
    md, stub = keys_server.md("alice"), keys_server.stub()
    names: list[str] = []
    token = ""
    while True:
        page = await stub.ListApiKeys(
            pb.ListApiKeysRequest(parent="workspaces/ws_a", page_size=2, page_token=token),
            metadata=md,
        )
        names += [k.name for k in page.api_keys]
        token = page.next_page_token
        if not token:
            break
    assert len(names) == 3 == len(set(names))
    await _fails(
        stub.ListApiKeys(
            pb.ListApiKeysRequest(parent="workspaces/ws_a", page_token="garbage"), metadata=md
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_PAGE_TOKEN",
    )


async def test_a_user_sees_its_own_keys_an_admin_sees_all(keys_server: KeysServer) -> None:
    alice = await _create(keys_server, "alice")
    await _create(keys_server, "bob")
    stub = keys_server.stub()
    await _fails(
        stub.GetApiKey(
            pb.GetApiKeyRequest(name=alice.api_key.name), metadata=keys_server.md("bob")
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    bob_list = await stub.ListApiKeys(
        pb.ListApiKeysRequest(parent="workspaces/ws_a"), metadata=keys_server.md("bob")
    )
    assert [k.created_by for k in bob_list.api_keys] == ["bob"]
    admin_list = await stub.ListApiKeys(
        pb.ListApiKeysRequest(parent="workspaces/ws_a"),
        metadata=keys_server.md("ada", role=ADMIN),
    )
    assert sorted(k.created_by for k in admin_list.api_keys) == ["alice", "bob"]


async def test_workspace_isolation(keys_server: KeysServer) -> None:
    a_key = await _create(keys_server, "alice", "ws_a", ADMIN)
    key_id = a_key.api_key.name.rsplit("/", 1)[1]
    stub = keys_server.stub()
    b_admin = keys_server.md("alice", "ws_b", ADMIN)  # same user, admin in another workspace
    for name in (a_key.api_key.name, f"workspaces/ws_b/apiKeys/{key_id}"):
        await _fails(
            stub.GetApiKey(pb.GetApiKeyRequest(name=name), metadata=b_admin),
            grpc.StatusCode.NOT_FOUND,
        )
        await _fails(
            stub.RevokeApiKey(pb.RevokeApiKeyRequest(name=name), metadata=b_admin),
            grpc.StatusCode.NOT_FOUND,
        )
        await _fails(
            stub.RotateApiKey(pb.RotateApiKeyRequest(name=name), metadata=b_admin),
            grpc.StatusCode.NOT_FOUND,
        )
        await _fails(
            stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=name), metadata=b_admin),
            grpc.StatusCode.NOT_FOUND,
        )
    listed = await stub.ListApiKeys(
        pb.ListApiKeysRequest(parent="workspaces/ws_b"), metadata=b_admin
    )
    assert list(listed.api_keys) == []
    await _fails(
        stub.ListApiKeys(pb.ListApiKeysRequest(parent="workspaces/ws_a"), metadata=b_admin),
        grpc.StatusCode.NOT_FOUND,
    )


# ---- UpdateApiKey --------------------------------------------------------------------------


async def test_update(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    stub, md = keys_server.stub(), keys_server.md("alice")
    updated = await stub.UpdateApiKey(
        pb.UpdateApiKeyRequest(
            api_key=pb.ApiKey(
                name=created.api_key.name,
                display_name="browser",
                allowed_origins=["https://App.Example.com/"],
                scopes=["members:write"],  # not in the mask: ignored
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name", "allowed_origins"]),
        ),
        metadata=md,
    )
    assert updated.display_name == "browser"
    assert list(updated.allowed_origins) == ["https://app.example.com"]
    assert list(updated.scopes) == ["keys:read"]
    assert keys_server.publisher.events[-1][1].value == "updated"


async def test_update_unhappy(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    stub, md = keys_server.stub(), keys_server.md("alice")

    def update(paths: list[str], **fields: Any) -> Any:
        return stub.UpdateApiKey(
            pb.UpdateApiKeyRequest(
                api_key=pb.ApiKey(name=created.api_key.name, **fields),
                update_mask=field_mask_pb2.FieldMask(paths=paths),
            ),
            metadata=md,
        )

    await _fails(update([]), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_UPDATE_MASK")
    await _fails(update(["environment"]), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_UPDATE_MASK")
    await _fails(
        update(["scopes"], scopes=["members:write"]),
        grpc.StatusCode.PERMISSION_DENIED,
        "SCOPE_EXCEEDS_CREATOR",
    )
    await _fails(
        update(["allowed_cidrs"], allowed_cidrs=["10.0.0.1/8"]),
        grpc.StatusCode.INVALID_ARGUMENT,
        "CIDR_INVALID",
    )
    past = keys_server.clock.now() - dt.timedelta(seconds=1)
    await _fails(
        update(["expire_time"], expire_time=_ts(past)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "EXPIRY_INVALID",
    )
    await stub.RevokeApiKey(pb.RevokeApiKeyRequest(name=created.api_key.name), metadata=md)
    await _fails(
        update(["display_name"], display_name="x"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "KEY_REVOKED",
    )


# ---- RevokeApiKey / RotateApiKey / DeleteApiKey / UndeleteApiKey ------------------------------


async def test_revoke(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    stub, md = keys_server.stub(), keys_server.md("alice")
    await _verify(keys_server, created.key)
    revoked = await stub.RevokeApiKey(
        pb.RevokeApiKeyRequest(name=created.api_key.name), metadata=md
    )
    assert revoked.state == pb.API_KEY_STATE_REVOKED and revoked.HasField("revoke_time")
    await _fails(_verify(keys_server, created.key), grpc.StatusCode.UNAUTHENTICATED, "KEY_REVOKED")
    assert (created.api_key.name.rsplit("/", 1)[1], "revoked") in [
        (k, e.value) for k, e in keys_server.publisher.events
    ]
    await _fails(
        stub.RevokeApiKey(
            pb.RevokeApiKeyRequest(name="workspaces/ws_a/apiKeys/missing"), metadata=md
        ),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_rotate_with_grace_and_without(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    stub, md = keys_server.stub(), keys_server.md("alice")
    name = created.api_key.name
    rotated = await stub.RotateApiKey(
        pb.RotateApiKeyRequest(name=name, grace_period=duration_pb2.Duration(seconds=3600)),
        metadata=md,
    )
    assert rotated.key and rotated.key != created.key
    assert rotated.api_key.prefix == rotated.key[:12]
    grace_end = keys_server.clock.now() + dt.timedelta(hours=1)
    assert rotated.api_key.rotation.previous_secret_expire_time.ToDatetime(dt.UTC) == grace_end
    old = await _verify(keys_server, created.key)
    assert old.previous_secret and old.secret_expire_time.ToDatetime(dt.UTC) == grace_end
    new = await _verify(keys_server, rotated.key)
    assert not new.previous_secret and not new.HasField("secret_expire_time")
    keys_server.clock.set(grace_end)
    await _fails(_verify(keys_server, created.key), grpc.StatusCode.UNAUTHENTICATED, "KEY_ROTATED")
    # grace 0: the previous secret stops at once
    again = await stub.RotateApiKey(pb.RotateApiKeyRequest(name=name), metadata=md)
    await _fails(_verify(keys_server, rotated.key), grpc.StatusCode.UNAUTHENTICATED)
    await _verify(keys_server, again.key)


async def test_rotate_unhappy(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    stub, md = keys_server.stub(), keys_server.md("alice")
    name = created.api_key.name
    await _fails(
        stub.RotateApiKey(
            pb.RotateApiKeyRequest(
                name=name, grace_period=duration_pb2.Duration(seconds=8 * 86400)
            ),
            metadata=md,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "GRACE_PERIOD_INVALID",
    )
    await stub.RevokeApiKey(pb.RevokeApiKeyRequest(name=name), metadata=md)
    await _fails(
        stub.RotateApiKey(pb.RotateApiKeyRequest(name=name), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "KEY_REVOKED",
    )


async def test_delete_and_undelete(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    stub, md = keys_server.stub(), keys_server.md("alice")
    name = created.api_key.name
    deleted = await stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=name), metadata=md)
    assert deleted.state == pb.API_KEY_STATE_DELETED
    await _fails(
        _verify(keys_server, created.key), grpc.StatusCode.UNAUTHENTICATED, "KEY_NOT_FOUND"
    )
    hidden = await stub.ListApiKeys(pb.ListApiKeysRequest(parent="workspaces/ws_a"), metadata=md)
    assert list(hidden.api_keys) == []
    shown = await stub.ListApiKeys(
        pb.ListApiKeysRequest(parent="workspaces/ws_a", show_deleted=True), metadata=md
    )
    assert [k.name for k in shown.api_keys] == [name]
    restored = await stub.UndeleteApiKey(pb.UndeleteApiKeyRequest(name=name), metadata=md)
    assert restored.state == pb.API_KEY_STATE_ACTIVE
    await _verify(keys_server, created.key)
    await _fails(
        stub.UndeleteApiKey(pb.UndeleteApiKeyRequest(name=name), metadata=md),
        grpc.StatusCode.FAILED_PRECONDITION,
        "KEY_NOT_DELETED",
    )
    await _fails(
        stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=name), metadata=keys_server.md("bob")),
        grpc.StatusCode.NOT_FOUND,
    )


async def test_a_deleted_workspace_refuses_mutations_and_keys(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    keys_server.workspaces.deleted.add("ws_a")
    await _fails(_create(keys_server), grpc.StatusCode.FAILED_PRECONDITION, "WORKSPACE_DELETED")
    await _fails(
        keys_server.stub().RevokeApiKey(
            pb.RevokeApiKeyRequest(name=created.api_key.name), metadata=keys_server.md("alice")
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "WORKSPACE_DELETED",
    )
    await _fails(
        _verify(keys_server, created.key), grpc.StatusCode.PERMISSION_DENIED, "WORKSPACE_DELETED"
    )


# ---- ListScopes ------------------------------------------------------------------------------


async def test_list_scopes(keys_server: KeysServer) -> None:
    response = await keys_server.stub().ListScopes(
        pb.ListScopesRequest(), metadata=keys_server.md("alice", ws="")
    )
    by_name = {s.scope: s for s in response.scopes}
    assert "/railguard.keys.v1.KeysService/CreateApiKey" in by_name["keys:write"].methods
    assert list(by_name["keys:write"].implies) == ["keys:read"]
    assert by_name["members:write"].min_role == ADMIN
    assert [s.scope for s in response.scopes] == sorted(by_name)
    await _fails(
        keys_server.stub().ListScopes(pb.ListScopesRequest()), grpc.StatusCode.UNAUTHENTICATED
    )


# ---- VerifyApiKey ---------------------------------------------------------------------------


async def test_verify_returns_the_principal(keys_server: KeysServer) -> None:
    expiry = keys_server.clock.now() + dt.timedelta(days=30)
    created = await _create(
        keys_server,
        scopes=["keys:write"],
        expire_time=_ts(expiry),
        allowed_origins=["https://app.example.com"],
    )
    verified = await _verify(keys_server, created.key, origin="https://app.example.com")
    assert verified.name == created.api_key.name
    assert verified.workspace_id == "ws_a" and verified.created_by == "alice"
    assert list(verified.scopes) == ["keys:write"]
    assert verified.environment == pb.ENVIRONMENT_LIVE
    assert verified.expire_time.ToDatetime(dt.UTC) == expiry
    assert list(verified.allowed_origins) == ["https://app.example.com"]


async def test_verify_is_internal_to_the_edge(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    request = pb.VerifyApiKeyRequest(key=created.key, required_scope="keys:read")
    for identity in ("outsider", "workspaces"):
        await _fails(
            keys_server.stub(identity).VerifyApiKey(request),
            grpc.StatusCode.PERMISSION_DENIED,
            "CALLER_NOT_ALLOWED",
        )
    await _fails(
        keys_server.stub("keys").CreateApiKey(
            pb.CreateApiKeyRequest(parent="workspaces/ws_a"), metadata=keys_server.md("alice")
        ),
        grpc.StatusCode.PERMISSION_DENIED,
        "CALLER_NOT_ALLOWED",
    )


async def test_malformed_keys_are_refused_before_any_database_read(
    keys_server: KeysServer,
) -> None:
    created = await _create(keys_server)
    typo = created.key[:-1] + ("A" if created.key[-1] != "A" else "B")
    cases = {
        "sk-proj-abc": "KEY_PREFIX_INVALID",
        created.key[:-3]: "KEY_LENGTH_INVALID",
        typo: "KEY_CHECKSUM_MISMATCH",
    }
    keys_server.statements.clear()
    for key, reason in cases.items():
        await _fails(_verify(keys_server, key), grpc.StatusCode.UNAUTHENTICATED, reason)
    assert keys_server.statements == []
    body_typo = created.key.replace(created.key[20], "0" if created.key[20] != "0" else "1", 1)
    await _fails(_verify(keys_server, body_typo), grpc.StatusCode.UNAUTHENTICATED)
    assert keys_server.statements == []


async def test_a_valid_key_costs_one_select_and_no_write(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    keys_server.statements.clear()
    await _verify(keys_server, created.key)
    selects = [s for s in keys_server.statements if s.lstrip().upper().startswith("SELECT")]
    writes = [
        s
        for s in keys_server.statements
        if s.lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))
    ]
    assert len(selects) == 1 and writes == []


async def test_a_key_verified_again_reads_nothing_while_the_feed_is_live(
    keys_server: KeysServer,
) -> None:
    created = await _create(keys_server)
    await _verify(keys_server, created.key)  # the first verification reads the key and keeps it
    async with asyncio.timeout(3.0):
        while True:  # until this replica's own change feed is live (a Bookmark heard)
            keys_server.statements.clear()
            await _verify(keys_server, created.key)
            if keys_server.statements == []:
                break
            await asyncio.sleep(0.05)
    # what is kept is the row: the request's own checks still run on every call
    await _fails(
        _verify(keys_server, created.key, scope="keys:write"),
        grpc.StatusCode.PERMISSION_DENIED,
        "SCOPE_NOT_GRANTED",
    )


async def test_a_change_committed_by_another_replica_reaches_a_kept_key_within_a_second(
    keys_server: KeysServer,
) -> None:
    created = await _create(keys_server)
    key_id = created.api_key.name.rsplit("/", 1)[1]
    async with asyncio.timeout(3.0):
        while True:  # kept, and answered from what is kept
            keys_server.statements.clear()
            await _verify(keys_server, created.key)
            if keys_server.statements == []:
                break
            await asyncio.sleep(0.05)
    # another replica: its own engine and unit of work on the same database
    other = create_engine(keys_server.settings.database_url)
    try:
        async with SqlKeysUnitOfWork(session_factory(other)) as uow:
            stored = await uow.keys.get("ws_a", key_id, lock=True)
            assert stored is not None
            await uow.keys.save(stored.revoke(now=keys_server.clock.now()))
            await uow.commit()
    finally:
        await dispose_engine(other)
    revoked_at = time.monotonic()
    async with asyncio.timeout(1.0):
        while True:
            try:
                await _verify(keys_server, created.key)
            except grpc.aio.AioRpcError as exc:
                assert exc.code() is grpc.StatusCode.UNAUTHENTICATED
                break
            await asyncio.sleep(0.01)
    assert time.monotonic() - revoked_at < 1.0


async def test_verify_at_the_exact_expiry_instant(keys_server: KeysServer) -> None:
    expiry = keys_server.clock.now() + dt.timedelta(hours=2)
    created = await _create(keys_server, expire_time=_ts(expiry))
    keys_server.clock.set(expiry - dt.timedelta(microseconds=1))
    await _verify(keys_server, created.key)
    keys_server.clock.set(expiry)
    await _fails(_verify(keys_server, created.key), grpc.StatusCode.UNAUTHENTICATED, "KEY_EXPIRED")
    got = await keys_server.stub().GetApiKey(
        pb.GetApiKeyRequest(name=created.api_key.name), metadata=keys_server.md("alice")
    )
    assert got.state == pb.API_KEY_STATE_EXPIRED


async def test_verify_with_ipv6_cidrs(keys_server: KeysServer) -> None:
    created = await _create(
        keys_server, allowed_cidrs=["2001:db8:1::/48", "::ffff:198.51.100.0/120"]
    )
    assert list(created.api_key.allowed_cidrs) == ["2001:db8:1::/48", "198.51.100.0/24"]
    for ip in ("2001:db8:1:ffff::1", "2001:DB8:1::", "198.51.100.200", "::ffff:198.51.100.1"):
        await _verify(keys_server, created.key, ip=ip)
    for ip in ("2001:db8:2::1", "::1", "198.51.101.1", ""):
        await _fails(
            _verify(keys_server, created.key, ip=ip),
            grpc.StatusCode.PERMISSION_DENIED,
            "IP_NOT_ALLOWED",
        )


async def test_verify_origin_and_scope_reasons(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    await _fails(
        _verify(keys_server, created.key, origin="https://example.com"),
        grpc.StatusCode.PERMISSION_DENIED,
        "ORIGIN_NOT_ALLOWED",
    )
    await _fails(
        _verify(keys_server, created.key, scope="keys:write"),
        grpc.StatusCode.PERMISSION_DENIED,
        "SCOPE_NOT_GRANTED",
    )
    await _fails(
        _verify(keys_server, created.key, scope=""),
        grpc.StatusCode.INVALID_ARGUMENT,
        "REQUIRED_SCOPE_INVALID",
    )


async def test_last_used_is_written_by_the_flush(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    md = keys_server.md("alice")
    await _verify(keys_server, created.key)
    got = await keys_server.stub().GetApiKey(
        pb.GetApiKeyRequest(name=created.api_key.name), metadata=md
    )
    assert not got.HasField("last_used_time")
    assert await keys_server.usage.flush() == 1
    got = await keys_server.stub().GetApiKey(
        pb.GetApiKeyRequest(name=created.api_key.name), metadata=md
    )
    assert got.last_used_time.ToDatetime(dt.UTC) == keys_server.clock.now()


# ---- the secret never comes back, and is never stored ----------------------------------------


async def test_the_key_is_never_returned_after_create(keys_server: KeysServer) -> None:
    created = await _create(keys_server, "alice", role=ADMIN)
    secret, body = created.key, created.key[8:51]
    stub, md = keys_server.stub(), keys_server.md("alice", role=ADMIN)
    name = created.api_key.name
    responses: list[Any] = [
        await stub.GetApiKey(pb.GetApiKeyRequest(name=name), metadata=md),
        await stub.ListApiKeys(
            pb.ListApiKeysRequest(parent="workspaces/ws_a", show_deleted=True), metadata=md
        ),
        await stub.UpdateApiKey(
            pb.UpdateApiKeyRequest(
                api_key=pb.ApiKey(name=name, display_name="renamed"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            ),
            metadata=md,
        ),
        await _verify(keys_server, secret),
        await stub.ListScopes(pb.ListScopesRequest(), metadata=md),
        await stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=name), metadata=md),
        await stub.UndeleteApiKey(pb.UndeleteApiKeyRequest(name=name), metadata=md),
    ]
    rotated = await stub.RotateApiKey(
        pb.RotateApiKeyRequest(name=name, grace_period=duration_pb2.Duration(seconds=60)),
        metadata=md,
    )
    responses.append(rotated.api_key)
    responses.append(await stub.RevokeApiKey(pb.RevokeApiKeyRequest(name=name), metadata=md))
    responses.append(await stub.GetApiKey(pb.GetApiKeyRequest(name=name), metadata=md))
    for response in responses:
        wire = response.SerializeToString()
        for needle in (secret, body, rotated.key, rotated.key[8:51]):
            assert needle.encode() not in wire
            assert needle not in str(response)


async def test_the_database_holds_no_key_in_clear(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    rotated = await keys_server.stub().RotateApiKey(
        pb.RotateApiKeyRequest(
            name=created.api_key.name, grace_period=duration_pb2.Duration(seconds=600)
        ),
        metadata=keys_server.md("alice"),
    )
    async with keys_server.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM api_keys"))).all()
    assert len(rows) == 1
    dump = repr(rows)
    raw = b"".join(v if isinstance(v, bytes) else str(v).encode() for v in rows[0])
    for secret in (created.key, rotated.key):
        body = secret[8:51]
        for needle in (secret, body, body[4:], secret[-6:] + "x"[:0]):
            assert needle not in dump
            assert needle.encode() not in raw


# ---- ListAllowedOrigins -----------------------------------------------------------------------


async def test_allowed_origins_are_those_of_active_keys_only(keys_server: KeysServer) -> None:
    ks, md = keys_server, keys_server.md("alice")
    stub = ks.stub()
    now = ks.clock.now()
    await _create(ks, allowed_origins=["https://a.example", "https://shared.example"])
    await _create(ks, ws="ws_b", allowed_origins=["https://shared.example"])
    await _create(
        ks, allowed_origins=["https://soon.example"], expire_time=_ts(now + dt.timedelta(hours=1))
    )
    revoked = await _create(ks, allowed_origins=["https://revoked.example"])
    await stub.RevokeApiKey(pb.RevokeApiKeyRequest(name=revoked.api_key.name), metadata=md)
    deleted = await _create(ks, allowed_origins=["https://deleted.example"])
    await stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=deleted.api_key.name), metadata=md)
    await _create(ks)  # a server key: no origins

    listed = await stub.ListAllowedOrigins(pb.ListAllowedOriginsRequest())
    assert list(listed.origins) == [
        "https://a.example",
        "https://shared.example",
        "https://soon.example",
    ]
    assert listed.version and not listed.unchanged
    same = await stub.ListAllowedOrigins(pb.ListAllowedOriginsRequest(known_version=listed.version))
    assert same.unchanged and list(same.origins) == [] and same.version == listed.version
    ks.clock.advance(hours=1)  # the instant of expiry is already expired
    later = await stub.ListAllowedOrigins(
        pb.ListAllowedOriginsRequest(known_version=listed.version)
    )
    assert not later.unchanged
    assert list(later.origins) == ["https://a.example", "https://shared.example"]


async def test_allowed_origins_are_internal_to_the_edge(keys_server: KeysServer) -> None:
    for identity in ("outsider", "workspaces"):
        await _fails(
            keys_server.stub(identity).ListAllowedOrigins(pb.ListAllowedOriginsRequest()),
            grpc.StatusCode.PERMISSION_DENIED,
            "CALLER_NOT_ALLOWED",
        )
