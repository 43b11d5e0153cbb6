"""The keys service records every change of a key the edge may have cached, in its transaction.

Topics (servicekit.changefeed, docs/api-keys.md): ``api_key`` "<key id>" for a key updated,
revoked, rotated, deleted, undeleted or purged; ``workspace`` "<workspace id>" for every workspace
lifecycle event applied (deleted, restored, purged: each key of the workspace).
"""

from __future__ import annotations

from google.protobuf import field_mask_pb2
from keys_service.adapters.tables import CHANGE_LOG
from railguard.keys.v1 import keys_service_pb2 as pb
from sqlalchemy import func, select

from .conftest import KeysServer
from .test_keys_api import _create
from .test_keys_lifecycle import DELETED, PURGED, apply, event


async def _changes(ks: KeysServer, after: int = 0) -> list[tuple[str, str]]:
    t = CHANGE_LOG.table.c
    async with ks.engine.connect() as conn:
        rows = await conn.execute(select(t.topic, t.key).where(t.id > after).order_by(t.id))
        return [(r.topic, r.key) for r in rows]


async def _newest(ks: KeysServer) -> int:
    async with ks.engine.connect() as conn:
        return int((await conn.execute(select(func.max(CHANGE_LOG.table.c.id)))).scalar() or 0)


async def test_every_key_change_is_recorded(keys_server: KeysServer) -> None:
    ks = keys_server
    created = await _create(ks)
    name, key_id = created.api_key.name, created.api_key.name.rsplit("/", 1)[1]
    stub, md = ks.stub(), ks.md("alice")
    assert await _changes(ks) == []  # a new key: nothing anyone could have cached
    steps = [
        lambda: stub.UpdateApiKey(
            pb.UpdateApiKeyRequest(
                api_key=pb.ApiKey(name=name, display_name="renamed"),
                update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
            ),
            metadata=md,
        ),
        lambda: stub.RotateApiKey(pb.RotateApiKeyRequest(name=name), metadata=md),
        lambda: stub.RevokeApiKey(pb.RevokeApiKeyRequest(name=name), metadata=md),
        lambda: stub.DeleteApiKey(pb.DeleteApiKeyRequest(name=name), metadata=md),
        lambda: stub.UndeleteApiKey(pb.UndeleteApiKeyRequest(name=name), metadata=md),
    ]
    for step in steps:
        mark = await _newest(ks)
        await step()
        assert await _changes(ks, mark) == [("api_key", key_id)]


async def test_each_applied_lifecycle_event_is_recorded_and_a_replay_is_not(
    keys_server: KeysServer,
) -> None:
    ks = keys_server
    await _create(ks)
    mark = await _newest(ks)
    assert await apply(ks, event(DELETED, 1)) == (1, 0)
    assert await _changes(ks, mark) == [("workspace", "ws_a")]
    mark = await _newest(ks)
    assert await apply(ks, event(DELETED, 1)) == (0, 1)  # already held: nothing changed
    assert await _changes(ks, mark) == []
    assert await apply(ks, event(PURGED, 2)) == (1, 0)
    assert await _changes(ks, mark) == [("workspace", "ws_a")]
