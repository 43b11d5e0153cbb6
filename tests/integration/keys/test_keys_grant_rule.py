"""The grant rule through the real keys server: no caller obtains a key wider than itself (issue 8).

Holes closed here: an Admin rotating the Owner's key got a secret acting as the Owner; a
``keys:write`` key could rotate a wider key and use its secret; a restricted key could PATCH its
restrictions away or mint an unrestricted child; keys did not record their creator's assurance.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from railguard.access.v1 import access_pb2
from railguard.keys.v1 import keys_service_pb2 as pb

from .conftest import KeysServer
from .test_keys_api import _reason

USER, ADMIN, OWNER = access_pb2.ROLE_USER, access_pb2.ROLE_ADMIN, access_pb2.ROLE_OWNER


def _ts(value: dt.datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


async def _denied(call: Any, reason: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED, err.value.details()
    assert _reason(err.value) == reason


async def _create(
    ks: KeysServer, md: Any, ws: str = "ws_a", **fields: Any
) -> pb.CreateApiKeyResponse:
    api_key = pb.ApiKey(
        display_name="k",
        environment=fields.pop("environment", pb.ENVIRONMENT_LIVE),
        scopes=fields.pop("scopes", ["keys:write"]),
        **fields,
    )
    response: pb.CreateApiKeyResponse = await ks.stub().CreateApiKey(
        pb.CreateApiKeyRequest(parent=f"workspaces/{ws}", api_key=api_key), metadata=md
    )
    return response


async def _verify(ks: KeysServer, secret: str) -> pb.VerifyApiKeyResponse:
    response: pb.VerifyApiKeyResponse = await ks.stub().VerifyApiKey(
        pb.VerifyApiKeyRequest(key=secret, client_ip="10.1.2.3", required_scope="keys:read")
    )
    return response


def _key_id(created: pb.CreateApiKeyResponse) -> str:
    return created.api_key.name.rsplit("/", 1)[1]


async def test_an_admin_rotating_the_owners_key_gets_a_key_bound_to_the_admin(
    keys_server: KeysServer,
) -> None:
    ks = keys_server
    owner_key = await _create(
        ks, ks.md("olga", role=OWNER), scopes=["workspaces:write", "keys:read"]
    )
    rotated = await ks.stub().RotateApiKey(
        pb.RotateApiKeyRequest(
            name=owner_key.api_key.name, grace_period=duration_pb2.Duration(seconds=3600)
        ),
        metadata=ks.md("ada", role=ADMIN),
    )
    # the new secret acts as the Admin (its creator is now the rotator), never as the Owner
    assert rotated.api_key.created_by == "ada"
    assert (await _verify(ks, rotated.key)).created_by == "ada"
    # the Owner's old secret does not start acting as the Admin: its grace ended at once
    assert not rotated.api_key.rotation.HasField("previous_secret_expire_time")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await _verify(ks, owner_key.key)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    events = [e for e in await ks.audit() if e.action == "apiKey.rotate"]
    assert events[-1].metadata["previous_created_by"] == "olga"
    assert events[-1].metadata["created_by"] == "ada"


async def test_self_rotation_keeps_its_creator_and_its_grace(keys_server: KeysServer) -> None:
    ks = keys_server
    mine = await _create(ks, ks.md("alice"))
    rotated = await ks.stub().RotateApiKey(
        pb.RotateApiKeyRequest(
            name=mine.api_key.name, grace_period=duration_pb2.Duration(seconds=60)
        ),
        metadata=ks.md("alice"),
    )
    assert rotated.api_key.created_by == "alice"
    assert rotated.api_key.rotation.HasField("previous_secret_expire_time")
    assert (await _verify(ks, mine.key)).previous_secret


async def test_a_keys_write_key_cannot_rotate_a_wider_key(keys_server: KeysServer) -> None:
    ks = keys_server
    wide = await _create(ks, ks.md("ada", role=ADMIN), scopes=["members:write", "keys:write"])
    narrow = await _create(ks, ks.md("ada", role=ADMIN), scopes=["keys:write"])
    as_narrow = ks.md("ada", role=ADMIN, key_scopes=("keys:write",), api_key_id=_key_id(narrow))
    await _denied(
        ks.stub().RotateApiKey(pb.RotateApiKeyRequest(name=wide.api_key.name), metadata=as_narrow),
        "SCOPE_EXCEEDS_CREATOR",
    )
    # the wider key's secret still works: nothing was rotated
    assert (await _verify(ks, wide.key)).scopes == ["keys:write", "members:write"]


async def test_a_restricted_key_cannot_shed_its_restrictions(keys_server: KeysServer) -> None:
    ks = keys_server
    expiry = ks.clock.now() + dt.timedelta(days=1)
    parent = await _create(
        ks,
        ks.md("alice"),
        allowed_cidrs=["10.0.0.0/8"],
        allowed_origins=["https://app.example"],
        expire_time=_ts(expiry),
    )
    as_parent = ks.md("alice", key_scopes=("keys:write",), api_key_id=_key_id(parent))
    stub = ks.stub()

    def patch(paths: list[str], **fields: Any) -> Any:
        return stub.UpdateApiKey(
            pb.UpdateApiKeyRequest(
                api_key=pb.ApiKey(name=parent.api_key.name, **fields),
                update_mask=field_mask_pb2.FieldMask(paths=paths),
            ),
            metadata=as_parent,
        )

    await _denied(patch(["allowed_cidrs"]), "CIDRS_EXCEED_CALLER")
    await _denied(patch(["allowed_cidrs"], allowed_cidrs=["10.0.0.0/7"]), "CIDRS_EXCEED_CALLER")
    await _denied(patch(["expire_time"]), "EXPIRY_EXCEEDS_CALLER")
    later = _ts(expiry + dt.timedelta(days=30))
    await _denied(patch(["expire_time"], expire_time=later), "EXPIRY_EXCEEDS_CALLER")
    await _denied(patch(["allowed_origins"]), "ORIGINS_EXCEED_CALLER")
    # narrowing is fine, and a rename needs no justification
    narrowed = await patch(
        ["allowed_cidrs", "display_name"], allowed_cidrs=["10.1.0.0/16"], display_name="n"
    )
    assert list(narrowed.allowed_cidrs) == ["10.1.0.0/16"]

    async def child(**fields: Any) -> pb.CreateApiKeyResponse:
        return await _create(ks, as_parent, **fields)

    restricted = {
        "allowed_cidrs": ["10.1.2.0/24"],
        "allowed_origins": ["https://app.example"],
        "expire_time": _ts(expiry),
    }
    await _denied(child(), "CIDRS_EXCEED_CALLER")
    await _denied(child(**{**restricted, "allowed_origins": []}), "ORIGINS_EXCEED_CALLER")
    await _denied(
        child(**{k: v for k, v in restricted.items() if k != "expire_time"}),
        "EXPIRY_EXCEEDS_CALLER",
    )
    await _denied(
        child(**restricted, environment=pb.ENVIRONMENT_TEST), "ENVIRONMENT_EXCEEDS_CALLER"
    )
    made = await child(**restricted)
    assert list(made.api_key.allowed_cidrs) == ["10.1.2.0/24"]


async def test_a_revoked_calling_key_grants_nothing(keys_server: KeysServer) -> None:
    ks = keys_server
    parent = await _create(ks, ks.md("alice"))
    await ks.stub().RevokeApiKey(
        pb.RevokeApiKeyRequest(name=parent.api_key.name), metadata=ks.md("alice")
    )
    as_parent = ks.md("alice", key_scopes=("keys:write",), api_key_id=_key_id(parent))
    await _denied(_create(ks, as_parent), "CALLER_KEY_INVALID")


async def test_a_key_records_its_creators_assurance(keys_server: KeysServer) -> None:
    ks = keys_server
    strong = await _create(ks, ks.md("alice", aal="aal2"))
    weak = await _create(ks, ks.md("alice", aal="aal1"))
    assert (await _verify(ks, strong.key)).aal == "aal2"
    assert (await _verify(ks, weak.key)).aal == "aal1"
    # a child inherits its parent key's assurance, whatever the forwarded principal claims
    as_weak = ks.md("alice", key_scopes=("keys:write",), api_key_id=_key_id(weak), aal="aal2")
    child = await _create(ks, as_weak)
    assert (await _verify(ks, child.key)).aal == "aal1"
    # rotation re-binds the assurance to the rotator's
    rotated = await ks.stub().RotateApiKey(
        pb.RotateApiKeyRequest(name=weak.api_key.name), metadata=ks.md("alice", aal="aal2")
    )
    assert (await _verify(ks, rotated.key)).aal == "aal2"
