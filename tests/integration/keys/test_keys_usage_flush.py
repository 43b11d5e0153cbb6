"""The last-used flush against the real databases: one statement for the batch, forward-only."""

from __future__ import annotations

import datetime as dt

from railguard.keys.v1 import keys_service_pb2 as pb

from .conftest import KeysServer
from .test_keys_api import _create, _verify


async def _last_used(ks: KeysServer, name: str) -> dt.datetime | None:
    got = await ks.stub().GetApiKey(pb.GetApiKeyRequest(name=name), metadata=ks.md("alice"))
    return got.last_used_time.ToDatetime(dt.UTC) if got.HasField("last_used_time") else None


async def test_one_flush_writes_every_used_key_with_one_update_statement(
    keys_server: KeysServer,
) -> None:
    created = [await _create(keys_server, display_name=f"k{i}") for i in range(3)]
    for c in created:
        await _verify(keys_server, c.key)
    keys_server.statements.clear()
    assert await keys_server.usage.flush() == 3
    updates = [s for s in keys_server.statements if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1  # sent once for the batch, not once per key
    for c in created:
        assert await _last_used(keys_server, c.api_key.name) == keys_server.clock.now()


async def test_the_batched_flush_never_moves_last_used_backwards(keys_server: KeysServer) -> None:
    created = await _create(keys_server)
    await _verify(keys_server, created.key)
    assert await keys_server.usage.flush() == 1
    key_id = created.api_key.name.rsplit("/", 1)[-1]
    keys_server.usage.record(key_id, keys_server.clock.now() - dt.timedelta(hours=1))
    assert await keys_server.usage.flush() == 1
    assert await _last_used(keys_server, created.api_key.name) == keys_server.clock.now()


async def test_a_kept_key_is_recorded_as_used_once_a_minute_not_on_every_call(
    keys_server: KeysServer,
) -> None:
    created = await _create(keys_server)
    await _verify(keys_server, created.key)
    assert keys_server.usage.pending == 1
    assert await keys_server.usage.flush() == 1
    for _ in range(5):  # kept or read again: the row it is decided on says it was just used
        await _verify(keys_server, created.key)
    assert keys_server.usage.pending == 0
    keys_server.clock.advance(minutes=1)
    await _verify(keys_server, created.key)
    assert keys_server.usage.pending == 1
