"""The edge's key cache: invalidation events drop exactly the key's entries; garbage drops all."""

from __future__ import annotations

import json

import grpc
from edge_service.api_keys import KeysServiceVerifier, _Entry
from servicekit import Principal


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
