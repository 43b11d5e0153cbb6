"""The edge's key cache: invalidation events drop exactly the key's entries; garbage drops all."""

from __future__ import annotations

import json

import grpc
import pytest
from edge_service.api_keys import KeyOrigins, KeysServiceVerifier, _Entry
from railguard.keys.v1 import keys_service_pb2
from servicekit import Principal
from servicekit.errors import RailguardError, Unauthenticated


async def test_invalidation_events() -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the cache is tested alone
    verifier = KeysServiceVerifier(channel)
    for key_id in ("k1", "k2"):
        cache_key = (key_id + "-digest", "127.0.0.1", "", "keys:read")
        verifier._cache[cache_key] = _Entry(Principal(api_key_id=key_id), (), float("inf"))
        verifier._by_key_id.setdefault(key_id, set()).add(cache_key)
    verifier._on_message(json.dumps({"v": 1, "key_id": "k1", "event": "revoked"}).encode())
    assert [e.principal.api_key_id for e in verifier._cache.values()] == ["k2"]
    verifier._on_message(b"not json")
    assert verifier._cache == {}
    await channel.close()


async def test_without_a_subscription_the_ttl_is_capped_below_one_second() -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")
    verifier = KeysServiceVerifier(channel, ttl=30.0)
    assert verifier.effective_ttl == 0.5
    await channel.close()


class _RefusingStub:
    def __init__(self) -> None:
        self.calls = 0

    async def VerifyApiKey(self, request: object, **_: object) -> object:  # noqa: N802 - gRPC name
        self.calls += 1
        raise Unauthenticated("the key is invalid", reason="KEY_NOT_FOUND")


async def test_a_refused_key_is_refused_locally_for_a_moment() -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")
    verifier = KeysServiceVerifier(channel)
    stub = _RefusingStub()
    verifier._stub = stub  # type: ignore[assignment]
    for _ in range(3):
        with pytest.raises(Unauthenticated) as err:
            await verifier.verify("rg_live_bad", "127.0.0.1", "", "keys:read")
        assert err.value.reason == "KEY_NOT_FOUND"
    assert stub.calls == 1
    verifier._on_message(json.dumps({"v": 1, "key_id": "k9", "event": "undeleted"}).encode())
    with pytest.raises(Unauthenticated):
        await verifier.verify("rg_live_bad", "127.0.0.1", "", "keys:read")
    assert stub.calls == 2, "any key change (an undelete) ends the negative entries"
    await channel.close()


class _OriginsStub:
    def __init__(self) -> None:
        self.origins = ["https://a.example"]
        self.requests: list[str] = []

    async def ListAllowedOrigins(  # noqa: N802 - gRPC name
        self, request: keys_service_pb2.ListAllowedOriginsRequest, **_: object
    ) -> keys_service_pb2.ListAllowedOriginsResponse:
        self.requests.append(request.known_version)
        version = ",".join(self.origins)
        if request.known_version == version:
            return keys_service_pb2.ListAllowedOriginsResponse(version=version, unchanged=True)
        return keys_service_pb2.ListAllowedOriginsResponse(version=version, origins=self.origins)


async def test_allowed_origins_are_refreshed_by_version_and_dropped_on_change() -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")
    origins = KeyOrigins(channel, ttl=60)
    stub = _OriginsStub()
    origins._stub = stub  # type: ignore[assignment]
    assert await origins.allows("https://a.example")
    assert await origins.allows("HTTPS://A.EXAMPLE")
    assert not await origins.allows("https://b.example")
    assert stub.requests == [""], "fresh within its ttl: one fetch"
    stub.origins = []
    origins.invalidate()  # a key changed (heard through Redis)
    assert not await origins.allows("https://a.example")
    assert stub.requests == ["", "https://a.example"]
    await channel.close()


async def test_a_stale_origin_set_that_cannot_be_refreshed_approves_nothing() -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # nothing listens there
    origins = KeyOrigins(channel, ttl=0.0)
    origins._origins = frozenset({"https://a.example"})
    with pytest.raises(RailguardError):
        await origins.allows("https://a.example")
    await channel.close()
